"""swarmai: serve ML models on Docker Swarm or Compose behind one Traefik gateway."""

__version__ = "0.1.0"
