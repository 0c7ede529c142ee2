"""The code that runs inside containers, apart from the host-side code.

- :mod:`.server`: swarmai's model server, the ``fastapi`` runtime
  (``python -m swarmai.incontainer.server``);
- :mod:`.sync`: the model-sync step beside TF Serving and TorchServe
  (``python -m swarmai.incontainer.sync``);
- :mod:`.registry_ops`: the registry operations the host CLI runs in one-off
  containers on the stack's network (``python -m swarmai.incontainer.registry_ops``).

Nothing here imports host-side code except :mod:`swarmai.errors` and
:mod:`swarmai.modeluri` (tests/test_layers.py keeps it so); the host reaches this
code only through published formats: commands, JSON answers, model layouts.
"""
