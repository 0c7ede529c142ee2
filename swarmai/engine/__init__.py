"""The only package that talks to the Docker engine.

Two clients, each for what it does best, both handed in by the caller:
python-on-whales drives the docker CLI for what only the CLI does well (stack
deploy, compose, one-off runs, builds), and docker-py's low-level API answers
the many small reads a convergence watch makes without a subprocess each.
Every engine failure leaves this package as an :class:`OperationError`
carrying the command, its exit code and stderr.  One module per kind of engine
object; callers import from here.
"""

from __future__ import annotations

from swarmai.engine.compose import (
    compose_down,
    compose_recreate,
    compose_up,
    compose_version,
    container_log_tail,
    inspect_container,
    project_containers,
)
from swarmai.engine.containers import (
    OneoffResult,
    run_oneoff,
    write_volume_file,
)
from swarmai.engine.core import (
    COMPOSE_PROJECT_LABEL,
    GENERATED_LABEL,
    NAMESPACE_LABEL,
    STACK_LABEL,
    Engine,
    api_errors,
    engine_errors,
)
from swarmai.engine.images import (
    build_image,
    buildkit_failure_lines,
    image_exists,
    import_rootfs,
    tag_image,
)
from swarmai.engine.swarm import (
    SecretReport,
    containers_labelled,
    deploy_stack,
    ensure_swarm_secrets,
    force_update_service,
    generated_secrets,
    info,
    missing_images,
    nodes,
    random_token,
    remove_config,
    remove_secret,
    remove_stack,
    remove_volume,
    rollback_service,
    secret_names,
    service_log_tail,
    service_tasks,
    service_update_state,
    stack_configs,
    stack_networks,
    stack_services,
    stack_volumes,
    utc_now,
    volume_exists,
    write_private_file,
)

__all__ = [
    "COMPOSE_PROJECT_LABEL",
    "GENERATED_LABEL",
    "NAMESPACE_LABEL",
    "STACK_LABEL",
    "Engine",
    "OneoffResult",
    "SecretReport",
    "api_errors",
    "build_image",
    "buildkit_failure_lines",
    "compose_down",
    "compose_recreate",
    "compose_up",
    "compose_version",
    "container_log_tail",
    "containers_labelled",
    "deploy_stack",
    "engine_errors",
    "ensure_swarm_secrets",
    "force_update_service",
    "generated_secrets",
    "image_exists",
    "import_rootfs",
    "info",
    "inspect_container",
    "missing_images",
    "nodes",
    "project_containers",
    "random_token",
    "remove_config",
    "remove_secret",
    "remove_stack",
    "remove_volume",
    "rollback_service",
    "run_oneoff",
    "secret_names",
    "service_log_tail",
    "service_tasks",
    "service_update_state",
    "stack_configs",
    "stack_networks",
    "stack_services",
    "stack_volumes",
    "tag_image",
    "utc_now",
    "volume_exists",
    "write_private_file",
    "write_volume_file",
]
