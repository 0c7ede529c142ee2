"""TorchServe handlers swarmai bundles into ``.mar`` archives (package data).

These modules run inside TorchServe's worker, not in swarmai: they import
nothing from swarmai, and importing this package does not import them.
"""
