"""Renderers: pure functions from a :class:`~swarmai.spec.Stack` to files and documents."""

from swarmai.render.bundle import Bundle, Serving, render_bundle

__all__ = ["Bundle", "Serving", "render_bundle"]
