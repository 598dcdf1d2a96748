"""Class names: ImageNet's from torchvision's weight metadata; user label files (text or JSON)."""

from __future__ import annotations

import functools
import json

from ..errors import ModelLoadError


@functools.cache
def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names (shipped in torchvision; no download)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def parse_labels(data: bytes, num_classes: int) -> list[str]:
    """A labels file -> list of names: one per line, a JSON list, or a JSON {index: name} object."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelLoadError("The labels file is not UTF-8 text. Save it as plain text, one class name per line.") from None
    stripped = text.strip()
    if stripped.startswith(("[", "{")):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ModelLoadError(f"The labels file looks like JSON but does not parse ({e}).") from None
        if isinstance(obj, dict):
            try:
                pairs = {int(k): str(v) for k, v in obj.items()}
            except ValueError:
                raise ModelLoadError("A JSON labels object must map class indices to names, e.g. {\"0\": \"cat\"}.") from None
            names = [pairs.get(i, f"class {i}") for i in range(num_classes)]
            extra = [i for i in pairs if not 0 <= i < num_classes]
            if extra:
                raise ModelLoadError(f"The labels file names class {extra[0]}, but the model has {num_classes} classes.")
            return names
        names = [str(v) for v in obj]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != num_classes:
        raise ModelLoadError(f"The labels file has {len(names)} names but the model has {num_classes} classes; "
                             "give exactly one name per class.")
    return names
