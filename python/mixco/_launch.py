"""The `mixco` console script: finds the native libraries the binary loads
and runs it in this process's place (os.execve), so its exit code, signals
and terminal are the user's."""

import glob
import importlib.util
import os
import sys

from . import __version__


def _package_dir(name):
    """Where an installed package lives, found without importing it
    (`import torch` needs the whole CUDA stack; finding it does not)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _trainer():
    """The libtorch-linked binary of the `mixco-train` wheel, if installed."""
    d = _package_dir("mixco_train")
    if d is None:
        return None
    path = os.path.join(d, "bin", "mixco")
    return path if os.access(path, os.X_OK) else None


def main():
    args = sys.argv[1:]
    env = dict(os.environ)
    wheel = "mixco " + __version__
    ort = _package_dir("onnxruntime")
    if ort is not None and "MIXCO_ORT_LIB" not in env:
        libs = sorted(glob.glob(os.path.join(ort, "capi", "libonnxruntime.so*")))
        if libs:
            env["MIXCO_ORT_LIB"] = libs[-1]
    binary = os.path.join(os.path.dirname(__file__), "bin", "mixco")
    trainer = _trainer()
    torch = _package_dir("torch")
    if trainer is not None and torch is not None:
        # The trainer links libtorch; the loader finds it through this path
        # (libtorch finds its CUDA runtime wheels itself).
        lib = os.path.join(torch, "lib")
        env["LD_LIBRARY_PATH"] = lib + (os.pathsep + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        binary = trainer
        wheel += " + mixco-train " + __version__
    elif args[:1] == ["train"] or args[:2] == ["bench", "train"]:
        need = "torch==2.11.0" if trainer is not None else "'mixco[train]'"
        print(f"error: mixco train needs the trainer and PyTorch's libtorch: pip install {need}", file=sys.stderr)
        sys.exit(2)
    env["MIXCO_WHEEL"] = wheel
    os.execve(binary, [binary] + args, env)


if __name__ == "__main__":
    main()
