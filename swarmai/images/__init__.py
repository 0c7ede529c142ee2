"""``swarmai images build``: the images a stack runs, built locally from PyPI and Debian.

swarmai's own images (``fastapi`` -> swarmai/server, ``model-sync``,
``engine-proxy``) are built always, since nobody publishes them; with ``offline`` the upstream ones
(traefik, seaweedfs, mlflow, postgres) are built too, for hosts that cannot
reach any container registry.  Every image is ``FROM`` one debootstrapped
Debian base, and every tag is a hash of what the image is built from, so
``image_tags`` can name the images without Docker and ``build_images`` skips
the ones already present.
"""

from swarmai.images.build import BuildResult, build_images
from swarmai.images.catalog import image_tags

__all__ = ["BuildResult", "build_images", "image_tags"]
