"""A promotion changes only the model it promotes.

A promotion runs the same deploy (or up) a user runs, so anything else that
differs between the stack file and what runs would roll out with it: an edit
not meant for production yet, or (the flag forgotten) the default images over
a stack deployed with ``--offline`` - Postgres of another major version over
the registry's data. Before anything changes, the plan of that deploy is made
(``swarmai plan``), and:

- the images the stack runs decide ``--offline``: the gateway's image is
  swarmai's offline build or the upstream one, so later commands (cron's
  included) act on the images deployed without repeating the flag;
- any change outside the promoted model's own services refuses the promotion
  (exit 2), naming each difference and the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from swarmai.engine import Engine
from swarmai.errors import UsageError
from swarmai.lifecycle.plan import Change, Plan, format_text
from swarmai.lifecycle.plan_live import make_plan, planned_stack
from swarmai.lifecycle.plan_shapes import LiveState
from swarmai.render import naming
from swarmai.spec import Model, Stack, Target
from swarmai.spec.images import image_for

Progress = Callable[[str], None]

# The image that tells how the stack was deployed: every stack has a gateway.
_WITNESS = ("traefik", naming.GATEWAY)


def deployed_offline(stack: Stack, target: Target, live: LiveState) -> bool | None:
    """Whether the running stack was deployed with ``--offline``; None when it does not
    run, or its gateway image is neither (an ``images:`` override names it)."""
    key, service = _WITNESS
    gateway = live.services.get(service)
    if gateway is None:
        return None
    running = gateway.image.split("@", 1)[0]  # deployed by digest through a registry
    matching = [offline for offline in (False, True)
                if image_for(planned_stack(stack, target, offline=offline).images, key)
                == running]
    return matching[0] if len(matching) == 1 else None


def offline_for(stack: Stack, target: Target, live: LiveState, asked: bool,
                progress: Progress) -> bool:
    """``--offline`` as the running stack was deployed, whatever was asked (the images of
    a running stack are never switched by a promotion, a backup or a restore); as asked
    when it does not run."""
    deployed = deployed_offline(stack, target, live)
    if deployed is None or deployed == asked:
        return asked
    progress(f"stack {stack.name} runs the {'offline' if deployed else 'default'} images: "
             f"using them (as if {'with' if deployed else 'without'} --offline)")
    return deployed


def check_only_the_model(engine: Engine, stack: Stack, target: Target, live: LiveState,
                         model: Model, stack_file: Path, *, offline: bool) -> None:
    """Refuse (exit 2) when a deploy of the stack now would change more than ``model``."""
    plan = make_plan(engine, stack, target, live, offline=offline)
    refuse_foreign(plan, foreign_changes(plan, model), model, str(stack_file), offline)


def foreign_changes(plan: Plan, model: Model) -> list[Change]:
    """The changes of ``plan`` that are not ``model``'s own: its server, canary and
    sync services, and its runtime's config files."""
    own = {naming.model_service(model), naming.canary_service(model),
           naming.sync_service(model)}
    return [change for change in plan.changes
            if not (change.kind == "service" and change.name in own)
            and not (change.kind == "config" and f"runtimes/{model.name}/" in change.name)]


def refuse_foreign(plan: Plan, changes: Sequence[Change], model: Model, stack_file: str,
                   offline: bool) -> None:
    """Raise the refusal (exit 2) for ``changes``, when there are any."""
    if not changes:
        return
    shown = Plan(plan.stack, plan.target, tuple(changes))
    command = "swarmai deploy" if plan.target == "swarm" else "swarmai up"
    flags = " --offline" if offline else ""
    raise UsageError(
        f"{stack_file}: the stack differs from what runs beyond model {model.name}, and a "
        f"promotion changes only the model it promotes:\n{format_text(shown.as_dict())}\n"
        f"apply those changes first (`{command} {stack_file}{flags}`), or undo the edit; "
        f"then promote again")
