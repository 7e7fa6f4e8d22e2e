"""Runs an exported ae detector in onnxruntime, for the e2e tests.

Usage: onnx_run.py MODEL IMAGES N OUT_DIR

IMAGES holds N images as little-endian float32 [N, 784]. Checks the model
with onnx.checker, runs it, and writes OUT_DIR/reconstruction.f32,
score.f32, is_anomaly.u8 (raw, little-endian) and metadata.json (the
model's metadata_props and opset).
"""

import json
import os
import sys

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
except ImportError as e:
    sys.exit(f"the ONNX test needs numpy, onnx and onnxruntime ({e}); "
             "pip install numpy onnx onnxruntime, or run .ci/run")

model_path, images_path, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
images = np.fromfile(images_path, dtype="<f4").reshape(n, 784)
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]
reconstruction, score, is_anomaly = session.run(None, {"images": images})
reconstruction.astype("<f4").tofile(os.path.join(out, "reconstruction.f32"))
score.astype("<f4").tofile(os.path.join(out, "score.f32"))
is_anomaly.astype(np.uint8).tofile(os.path.join(out, "is_anomaly.u8"))
with open(os.path.join(out, "metadata.json"), "w") as f:
    json.dump({
        "metadata": {p.key: p.value for p in model.metadata_props},
        "opset": [o.version for o in model.opset_import],
        "inputs": [i.name for i in session.get_inputs()],
        "outputs": names,
        "types": [str(o.type) for o in session.get_outputs()],
        "onnxruntime": ort.__version__,
    }, f)
