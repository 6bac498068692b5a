"""How ``old_*.pt`` were made: checkpoints of taskgraph at commit f453ee9 (before the
task-type registry, the one group-index buffer and the encoder adapter), with the
outputs that code computed. Run with that commit's package on ``PYTHONPATH``::

    git archive f453ee9 | tar -x -C /tmp/old
    cd /tmp/old && PYTHONPATH=. python PATH/TO/make_old_checkpoints.py DEST

Not a test: ``tests/model/test_old_checkpoints.py`` reads the files.
"""
import sys

import torch

import taskgraph as tg

out = sys.argv[1]
torch.manual_seed(0)
mixed = {"taskgraph": 1, "name": "mixed", "tasks": {
    "a": {"type": "binary"}, "b": {"type": "binary", "parents": ["a"]},
    "c": {"type": "multiclass", "classes": 3, "parents": ["a"]},
    "e": {"type": "multilabel", "classes": 2, "parents": ["b", "c"]},
    "f": {"type": "regression", "outputs": 2, "parents": ["c"]}}}
model = tg.compile(mixed, in_features=3, task_dim=4, encoder_spec={"hidden": [5]}, rounds=0,
                   stochastic={"heads": True, "projections": True}).eval()
model.set_target_scaling([1.0, -2.0], [2.0, 0.5])
x = torch.randn(4, 3)
tg.save(model, f"{out}/old_mlp.pt")
torch.manual_seed(1)
pred = model.predict(x, samples=3)
expected = {"x": x}
for name in model.hierarchy.task_names:
    p = pred[name]
    for field in ("probs", "std", "entropy", "mutual_info", "value", "variance", "label"):
        v = getattr(p, field)
        if v is not None:
            expected[f"{name}.{field}"] = v
with torch.no_grad():
    o = model(x)
    for name in o:
        expected[f"{name}.logits"] = o[name]
torch.save(expected, f"{out}/old_mlp_expected.pt")

torch.manual_seed(2)
enc = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.BatchNorm1d(6))
model = tg.compile("hierarchies/animals.yaml", encoder=enc, task_dim=4, rounds=0).eval()
tg.save(model, f"{out}/old_user_encoder.pt")
with torch.no_grad():
    o = model(x)
torch.save({"x": x, **{f"{n}.logits": o[n] for n in o}}, f"{out}/old_user_encoder_expected.pt")
print(sorted(model.state_dict())[:6])  # encoder.0.bias, ...: the layout before the adapter

# message passing as it was then: LayerNorm on each round's residual sum (taskgraph
# now records that as message_norm="residual" for files without the field)
torch.manual_seed(3)
model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4, rounds=2,
                   encoder_spec={"hidden": [5]}).eval()
with torch.no_grad():
    o = model(x)
tg.save(model, f"{out}/old_messages.pt")
torch.save({"x": x, **{f"{n}.logits": o[n] for n in o}}, f"{out}/old_messages_expected.pt")
