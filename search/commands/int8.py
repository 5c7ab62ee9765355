"""The int8 model of an export, and the accuracy of both models as a user would run them.

The int8 model is statically quantized with onnxruntime's quantization tools: per-channel int8
weights, int8 activations in the QDQ format, ranges calibrated on training images only. The weights
use 7 of their 8 bits (`reduce_range`): x86 CPUs without VNNI multiply uint8 activations by int8
weights in pairs summed into 16 bits (VPMADDUBSW), which saturates with full-range weights; on this
project's 2-core AVX2 CPU that cost a 2-epoch test model 5.6 points of test accuracy, and 7-bit
weights 0.3 (RESULTS.md, "int8"). Why
onnxruntime rather than PyTorch's export-based quantization: the ONNX file is what the device paths
take (onnxruntime on phones and servers, onnxruntime-web in browsers, converters towards
microcontroller runtimes), so quantizing and measuring in onnxruntime measures exactly what ships;
PyTorch's quantization has moved out of torch into torchao, one more dependency, and its int8
programs run in PyTorch rather than on those runtimes.

Both accuracies are measured by onnxruntime on the same test images: the float32 `model.onnx` and
the int8 `model-int8.onnx`. Nothing here chooses anything: the test set is only reported.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from space.spec import ArchSpec

INT8_FILE = "model-int8.onnx"
CALIBRATION_IMAGES = 1024  # a seeded draw of training images: enough for min-max ranges of tiny nets
CALIBRATION_SEED = 0
BATCH = 1000  # images per onnxruntime call when measuring
NOTABLE_LOSS = 0.2  # points of test accuracy; a larger int8 loss is called out in the card


@dataclass(frozen=True)
class Measured:
    """Test accuracy of the exported models, measured by onnxruntime."""

    float32: float  # % of the test images model.onnx classifies right
    int8: float  # % model-int8.onnx classifies right
    images: int  # test images measured on
    int8_bytes: int  # size of model-int8.onnx on disk
    float32_bytes: int  # size of model.onnx on disk
    runtime: str  # "onnxruntime 1.x.y"
    calibration_images: int  # training images the int8 ranges were calibrated on

    @property
    def loss(self) -> float:
        return self.float32 - self.int8

    def to_dict(self) -> dict:
        return asdict(self)


def available() -> str | None:
    """None when onnxruntime's quantization tools load, else why not (one line)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as e:
        return f"{e.name or 'onnxruntime'} is not installed (pip install 'budgetnas[onnx]')"
    return None


def normalized(x: torch.Tensor, mean, std) -> np.ndarray:
    """uint8 [N, C, H, W] -> float32 inputs as every exported model takes them."""
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
    return ((x.cpu().float() / 255.0 - m) / s).numpy()


def calibration_images(train_x: torch.Tensor, mean, std) -> np.ndarray:
    g = torch.Generator().manual_seed(CALIBRATION_SEED)
    pick = torch.randperm(len(train_x), generator=g)[:CALIBRATION_IMAGES]
    return normalized(train_x[pick], mean, std)


def _inference_onnx(model: torch.nn.Module, spec: ArchSpec, path: Path) -> None:
    """The eval-mode graph with batch norm folded into the convs: what a quantizer should see."""
    x = torch.zeros(1, spec.in_channels, spec.in_size, spec.in_size)
    torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)


def quantize(model: torch.nn.Module, spec: ArchSpec, calibration: np.ndarray, out: Path) -> Path:
    """Write the statically quantized int8 model of `model` to `out`."""
    from onnxruntime.quantization import (
        CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(calibration, max(1, len(calibration) // 128)))

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {"image": batch}

    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        fp32, pre = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx"
        _inference_onnx(model, spec, fp32)
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    return out


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantizer logs to the root logger, warning for instance that a batch norm's 1-D scale
    has no axis 1 to quantize per channel (it is then quantized per tensor, which is right)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are noise to a user
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_logits(path: Path, x: np.ndarray) -> np.ndarray:
    s = session(path)
    return np.concatenate([s.run(["logits"], {"image": x[i:i + BATCH]})[0] for i in range(0, len(x), BATCH)])


def accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    return round(100.0 * float((onnx_logits(path, x).argmax(1) == y).mean()), 2)


def quantize_and_measure(model: torch.nn.Module, spec: ArchSpec, folder: Path, train_x: torch.Tensor,
                         test_x: torch.Tensor, test_y: torch.Tensor, mean, std) -> Measured:
    """Write folder/model-int8.onnx (calibrated on `train_x`), then measure it and folder/model.onnx
    on the test images."""
    import onnxruntime

    int8 = quantize(model, spec, calibration_images(train_x, mean, std), folder / INT8_FILE)
    x, y = normalized(test_x, mean, std), test_y.cpu().numpy()
    return Measured(float32=accuracy(folder / "model.onnx", x, y), int8=accuracy(int8, x, y), images=len(y),
                    int8_bytes=int8.stat().st_size, float32_bytes=(folder / "model.onnx").stat().st_size,
                    runtime=f"onnxruntime {onnxruntime.__version__}", calibration_images=min(CALIBRATION_IMAGES, len(train_x)))
