"""The model registry side of swarmai: MLflow operations, run beside the stack's MLflow."""
