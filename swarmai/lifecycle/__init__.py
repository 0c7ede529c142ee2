"""A stack's lifecycle on a Docker engine: start, restart, stop, status, doctor.

:mod:`.backend` is the one interface (a Swarm and a Compose implementation,
chosen in one place: :func:`~swarmai.lifecycle.backend.backend_for`);
:mod:`.steps` is the list of steps deploy (Swarm) and up (Compose) share.
Nothing is imported here, so ``swarmai render`` can use :mod:`.ipvs` without
loading the Docker clients.
"""
