"""Registry operations run inside a container on the stack's network, beside its MLflow.

:mod:`.versions` registers, lists and checks model versions; :mod:`.aliases` is the
MLflow side of a promotion; ``python -m swarmai.incontainer.registry_ops`` answers the
host's :mod:`swarmai.registry_client` in JSON.
"""
