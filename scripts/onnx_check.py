"""Runs the official ONNX checker (full check, with shape inference) on each file given."""
import sys

import onnx

for path in sys.argv[1:]:
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    print(f"{path}: ok (ir {model.ir_version}, opset {model.opset_import[0].version}, {meta.get('arch')})")
