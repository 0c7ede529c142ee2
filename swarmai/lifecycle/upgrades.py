"""The registry's images, running and planned, read from the engine; deploy's guard.

``swarmai deploy`` / ``up`` call :func:`check_registry_images` before they
change anything (before the bundle is written, secrets created or a service
updated): a registry whose data the new images cannot open, or would migrate
without a way back, is refused with exit 2 and the way out
(:mod:`.upgrade_rules` says which).  Why on the host and not in the
entrypoint: MLflow's entrypoint runs ``mlflow db upgrade`` at every start, so
by the time a container could object the schema is migrated; the last point
where a backup can still be taken is before the deploy, so the deploy stops
there and ``--upgrade-registry`` says the backup was taken.

The running image is the service's (Swarm: its spec; Compose: its container's
image reference); versions come from ``docker image inspect`` of each side,
or, for an image this engine does not hold, from its tag.
"""

from __future__ import annotations

from collections.abc import Callable

from swarmai import engine as docker
from swarmai.engine import Engine
from swarmai.errors import UsageError
from swarmai.lifecycle.plan_shapes import LiveState
from swarmai.lifecycle.upgrade_rules import ImageFacts, Verdict, image_facts, judge, refusal_message
from swarmai.render.naming import MLFLOW, POSTGRES, S3
from swarmai.spec import Stack, image_for

_S3_BACKEND_ENV = "SWARMAI_S3_BACKEND"  # set on the S3 service by render.registry


def registry_images(stack: Stack) -> dict[str, tuple[str, str]]:
    """Service -> (kind, image reference) of each registry service ``stack`` runs; its
    ``images:`` must already hold what a deploy uses (steps.with_images)."""
    images = {MLFLOW: ("mlflow", image_for(stack.images, "mlflow"))}
    if stack.registry.backend_store == "postgres":
        images[POSTGRES] = ("postgres", image_for(stack.images, "postgres"))
    if stack.storage.backend != "external":
        images[S3] = (stack.storage.backend, image_for(stack.images, stack.storage.backend))
    return images


def registry_verdicts(engine: Engine, live: LiveState, stack: Stack, *,
                      stack_file: str = "FILE") -> list[Verdict]:
    """For each registry service of ``stack``: what deploying its image over ``live``
    does to the service's data."""
    verdicts = []
    for service, (kind, reference) in registry_images(stack).items():
        planned = image_facts(kind, reference, docker.inspect_image(engine, reference))
        verdicts.append(judge(service, _running(engine, live, service, kind), planned,
                              stack_file=stack_file))
    return verdicts


def _running(engine: Engine, live: LiveState, service: str, kind: str) -> ImageFacts | None:
    """The facts of the image ``service`` runs now (None: it does not run).

    The S3 store's kind is the one its service was rendered for, so switching
    SeaweedFS for MinIO is seen as another store, not as another release.
    """
    shape = live.services.get(service)
    if shape is None or not shape.image:
        return None
    if service == S3:
        kind = shape.environment.get(_S3_BACKEND_ENV, kind)
    # By the exact reference only: a digest-pinned reference whose digest this engine
    # lacks is read from its tag rather than from whatever the tag names here now.
    return image_facts(kind, shape.image, docker.inspect_image(engine, shape.image))


def check_registry_images(engine: Engine, live: LiveState, stack: Stack, *, stack_file: str,
                          acknowledged: bool, progress: Callable[[str], None]) -> list[Verdict]:
    """The verdicts; raise :class:`UsageError` (exit 2), changing nothing, when one
    refuses the deploy (``acknowledged``: --upgrade-registry was given).  What goes
    ahead and changes an image is told to ``progress``."""
    verdicts = registry_verdicts(engine, live, stack, stack_file=stack_file)
    message = refusal_message(verdicts, stack.name, acknowledged=acknowledged)
    if message is not None:
        raise UsageError(message)
    for verdict in verdicts:
        if verdict.effect not in ("new", "same"):
            progress(f"{verdict.service}: {verdict.says}")
    return verdicts

