"""mixco: self-supervised visual representation learning (MixCo, MoCo-v2,
SimCLR), one command from data to an evaluated encoder.

This package is the `mixco` command: a launcher that finds ONNX Runtime (the
`onnxruntime` package) and, with `mixco[train]`, libtorch (the `torch`
package) without importing either, then runs the bundled binary.
"""

__version__ = "0.1.0"
