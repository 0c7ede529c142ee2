"""Renderers: pure functions from a :class:`~swarmai.spec.Stack` to files and documents."""

from swarmai.render.bundle import Bundle, render_bundle

__all__ = ["Bundle", "render_bundle"]
