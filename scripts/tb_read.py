"""Reads a run folder's TensorBoard event files with TensorBoard's own
reader (event_accumulator, as `tensorboard --logdir` does, purging what a
restart supersedes) and prints {"scalars": {tag: [[step, value], ...]},
"text": {tag: [[step, text], ...]}} as JSON. Used by tests/cli_train.rs.

    .venv/bin/python scripts/tb_read.py RUN_DIR
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea


def main(run):
    acc = ea.EventAccumulator(run, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0}, purge_orphaned_data=True)
    acc.Reload()
    tags = acc.Tags()
    scalars = {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]}
    text = {t: [[e.step, e.tensor_proto.string_val[0].decode()] for e in acc.Tensors(t)] for t in tags.get("tensors", [])}
    json.dump({"scalars": scalars, "text": text}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
