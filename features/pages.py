"""The product's pages, rendered from Jinja2 templates on one base layout
(``features/templates/base.html``): Chinese first, the product's typeface (:mod:`features.typeface`),
a Content-Security-Policy that lets a page load nothing from anywhere (no script at all; fonts
only from the page itself or the service that served it) and a language toggle. Each package keeps
its pages' templates in its own ``templates/`` folder and extends ``base.html``.

The toggle needs no script, so it works in a page saved to a file as well as in the service: text
written in both languages is marked with its ``lang`` (:func:`both`), and the links at the top of
every page (``#lang-zh``, ``#lang-en``) hide the other language by CSS alone; a page opened without
either shows both, Chinese first. A link to ``…#lang-en`` opens the English page.
"""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup  # light (jinja2's own); both() marks a page's words with it, hundreds a page

PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'")
"""What every page may load: its own inline styles and fonts from itself (``data:``) or from the
service that served it; no script, no frame, no form target, nothing from another host. Sent as
the page's HTTP header by the service as well (``frame-ancestors`` only works there)."""
PAGE_CSP_HEADER = PAGE_CSP + "; frame-ancestors 'none'"
"""The policy as the service sends it in the ``Content-Security-Policy`` header."""


def both(zh: str, en: str):
    """Chinese and English side by side, each marked with its language for the page's toggle
    (both escaped)."""
    return Markup('<span lang="zh-CN">{}</span> <span lang="en">{}</span>').format(zh, en)


@lru_cache(maxsize=None)
def environment(package: str):
    """The Jinja2 environment of ``package``'s templates (its ``templates/`` folder, then the base
    layout's), escaping every value into HTML unless a template marks it safe."""
    from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

    loaders = [PackageLoader(package, "templates")] + ([] if package == "features" else
                                                       [PackageLoader("features", "templates")])
    env = Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, keep_trailing_newline=False)
    env.globals["both"] = both
    return env


def render_page(package: str, template: str, **context) -> str:
    """A whole page: ``template`` of ``package`` with ``context``, on the base layout (its
    Content-Security-Policy included); the typeface is the caller's to add
    (:func:`features.typeface.with_typeface` or :func:`~features.typeface.with_linked_typeface`)."""
    return environment(package).get_template(template).render(csp=PAGE_CSP, **context)
