"""``python -m xai_core.batch`` (console script ``xai-batch``): see ``--help`` and the README's "Batch runs".
``xai-batch concepts …`` runs concept discovery over a set instead (:mod:`.concepts`; ``xai-batch concepts --help``)."""

from __future__ import annotations

import sys

from ..errors import XaiError
from . import concepts
from .config import parse_args
from .runner import run, summary_text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["concepts"]:  # a folder named 'concepts' is given as ./concepts
        return concepts.main(args[1:])
    try:
        config, ns = parse_args(argv)
        summary = run(config, show_bar=not ns.no_progress)
    except XaiError as e:
        print(f"xai-batch: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xai-batch: interrupted; run the same command again to resume (finished images are skipped).",
              file=sys.stderr)
        return 130
    print(summary_text(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
