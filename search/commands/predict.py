"""`python -m search predict --model DIR IMAGE...`: class and confidence per image file.

For a model of MNIST or Fashion-MNIST, images of any size are brought to that data set's form:
grayscale, light object on black (inverted when the border is light), cropped to the object's
bounding box, then scaled and placed in a 28x28 frame as the data set was made: MNIST's digits
20 px on their longer side with their centre of mass at the centre; Fashion-MNIST's products
28 px on their longer side, the box centred. For a model of your own data, images are converted
to its channels and resized to its size, as the data was read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from search.errors import UserError
from space import ArchSpec, build


def load_export(folder: Path) -> tuple[torch.nn.Module, dict]:
    meta_path = Path(folder) / "spec.json"
    if not meta_path.is_file():
        raise UserError(f"{folder} is not an export folder (no spec.json); run `python -m search export` first")
    meta = json.loads(meta_path.read_text())
    model = build(ArchSpec.from_dict(meta["spec"]))
    model.load_state_dict(torch.load(Path(folder) / "weights.pt", weights_only=True))
    return model.eval(), meta


@dataclass(frozen=True)
class Form:
    """How a data set placed its objects in the frame."""

    box: int  # the longer side of the object's bounding box, px
    by_mass: bool  # centred by its centre of mass (else by its box)


FORMS = {"mnist": Form(box=20, by_mass=True), "fashion-mnist": Form(box=28, by_mass=False)}


def in_form(img: Image.Image, form: Form, size: int = 28) -> np.ndarray:
    """Any image -> float32 [size, size] in [0, 1], in `form` (see the module docstring)."""
    a = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 0.5:  # the background, not the whole image: a white shirt may fill its frame
        a = 1.0 - a
    ys, xs = np.nonzero(a > 0.1)
    if len(ys) == 0:
        return np.zeros((size, size), np.float32)
    a = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = a.shape
    scale = form.box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    a = np.asarray(Image.fromarray((a * 255).astype(np.uint8)).resize((nw, nh), Image.BILINEAR), np.float32) / 255
    frame = np.zeros((size, size), np.float32)
    total = a.sum()
    if form.by_mass and total > 0:
        cy, cx = (np.indices(a.shape) * a).reshape(2, -1).sum(1) / total
    else:
        cy, cx = nh / 2, nw / 2
    top, left = int(round(size / 2 - cy)), int(round(size / 2 - cx))
    top, left = min(max(top, 0), size - nh), min(max(left, 0), size - nw)
    frame[top : top + nh, left : left + nw] = a
    return frame


def as_read(img: Image.Image, channels: int, size: int) -> np.ndarray:
    """Any image -> float32 [channels, size, size] in [0, 1], as trainers/sources.py reads a folder."""
    im = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.BILINEAR)
    a = np.asarray(im, dtype=np.float32) / 255.0
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def model_inputs(meta: dict, images: list[Image.Image]) -> torch.Tensor:
    """Image files -> the normalized float [N, C, H, W] batch every exported model takes."""
    spec = ArchSpec.from_dict(meta["spec"])
    form = FORMS.get(meta.get("dataset", "mnist"))
    if form is not None:
        x = torch.from_numpy(np.stack([in_form(im, form) for im in images]))[:, None]
    else:
        x = torch.from_numpy(np.stack([as_read(im, spec.in_channels, spec.in_size) for im in images]))
    norm = meta["normalize"]
    mean, std = (torch.as_tensor(norm[k], dtype=torch.float32).reshape(1, -1, 1, 1) for k in ("mean", "std"))
    return (x - mean) / std


def labelled(meta: dict, logits: torch.Tensor) -> list[tuple[str, float]]:
    conf, label = torch.softmax(logits, dim=1).max(1)
    classes = meta.get("classes") or [str(i) for i in range(ArchSpec.from_dict(meta["spec"]).num_classes)]
    return [(classes[i], c) for i, c in zip(label.tolist(), conf.tolist())]


def predict_images(model: torch.nn.Module, meta: dict, images: list[Image.Image]) -> list[tuple[str, float]]:
    with torch.no_grad():
        return labelled(meta, model(model_inputs(meta, images)))


def predict_int8(folder: Path, meta: dict, images: list[Image.Image]) -> list[tuple[str, float]]:
    """The same, by the int8 ONNX model in onnxruntime (the runtime its accuracy was measured in)."""
    from search.commands import int8

    path = Path(folder) / int8.INT8_FILE
    if not path.is_file():
        raise UserError(f"{folder} has no {int8.INT8_FILE}; export it again with onnxruntime installed "
                        "(pip install 'budgetnas[onnx]')")
    missing = int8.available()
    if missing:
        raise UserError(f"--int8 needs onnxruntime: {missing}")
    return labelled(meta, torch.from_numpy(int8.onnx_logits(path, model_inputs(meta, images).numpy())))


def predict_files(folder: Path, paths: list[Path], use_int8: bool = False) -> int:
    model, meta = load_export(folder)
    images = []
    for p in paths:
        try:
            images.append(Image.open(p))
        except (FileNotFoundError, UnidentifiedImageError, IsADirectoryError) as e:
            raise UserError(f"{p}: not a readable image ({type(e).__name__})") from None
    answers = predict_int8(folder, meta, images) if use_int8 else predict_images(model, meta, images)
    for p, (label, conf) in zip(paths, answers):
        print(f"{p}: {label} ({conf:.1%})")
    return 0
