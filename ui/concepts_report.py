"""The Concepts page's report (one offline HTML file, ``xai_core.report.concept_report``): the class, the layer, the
importance method, each concept under the name this workspace gave it (escaped: names are a visitor's text) with its
importance share and reference crops, then the P-ClArC / A-ClArC before-and-after tables and the TCAV scores that
were run. Built once per content (the discovery, the names, which results exist)."""

from __future__ import annotations

from xai_core import concepts, report

from . import concepts_correct, concepts_names
from .concepts_data import Found, crop
from .concepts_tcav import TcavRun
from .report_button import report_download
from .state import Context


def data(ctx: Context, found: Found, runs: list[TcavRun]) -> report.ReportData:
    d, name_of = found.discovery, concepts_names.name_of
    entries = [report.ConceptEntry(name_of(found, c.index), c.share, c.importance,
                                   [crop(found, r.image, r.box) for r in c.crops]) for c in d.concepts]
    tables = concepts_correct.done(ctx, found)
    if runs:
        tables.append(("TCAV (your concept images against random sets)", [r.row() for r in runs]))
    return report.concept_report(ctx.model, ctx.model.label(d.target), d.layer, d.importance_method, entries,
                                 tables=tables, settings=_settings(found))


def _settings(found: Found) -> dict[str, object]:
    d = found.discovery
    fit = {} if concepts.is_crp(d) else {"unexplained by the factorisation": f"{d.relative_error:.1%}"}
    return {"images": found.set.title, "concepts": len(d.concepts), **fit, "names": "as named in this workspace"}


def download(ctx: Context, found: Found, runs: list[TcavRun]) -> None:
    """The report's download button; TCAV runs of other weights than the discovery's are left out."""
    mine = [r for r in runs if r.sig[1] == found.model_digest]
    names = tuple(sorted(concepts_names.names(found).items()))
    present = tuple(title for title, _rows in concepts_correct.done(ctx, found))
    report_download(lambda: data(ctx, found, mine), "concepts_report",
                    f"xai-concepts-{found.model_digest[:8]}-{found.discovery.target}.html",
                    ("concepts", found.sig, names, present, tuple(r.sig for r in mine)))
