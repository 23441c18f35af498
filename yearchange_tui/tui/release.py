"""What the console does so that a closed screen leaves nothing behind (issue 14, item 15).

Two Textual caches outlive the widgets they were filled for, as long as nothing else
changes:

- the watchers a node registers on another one (``watch``, ``data_bind``) are stored on
  the observed node and only pruned when the observed value changes (Textual issue
  6666): :func:`release_closed_watchers` drops those of closed nodes;
- ``StylesCache.get_inner_outer`` is an ``lru_cache(1024)`` on an instance method, so it
  keeps up to 1,024 widgets' style caches alive, each with the lines it last rendered:
  :func:`release_render_caches` empties it (the open screens' entries come back on their
  next render);
- ``query_one`` answers are cached per node in an ``LRUCache(1024)`` keyed by the version
  of the node's child list, which moves as screens are shown and closed: each open and
  close of a screen added entries to the grid's and the app's caches until 1,024 were
  held (a few hundred KB each, measured as the slow growth of the memory test):
  :func:`release_query_caches` empties them when a screen shows again.
"""

from __future__ import annotations

from textual._styles_cache import StylesCache
from textual.dom import DOMNode


def release_closed_watchers(observed: DOMNode) -> int:
    """Forget the watchers of ``observed`` whose watching node is closed; return how many."""
    watchers: dict[str, list[tuple[DOMNode, object]]] = getattr(observed, "__watchers", {})
    released = 0
    for entries in watchers.values():
        kept = [(node, callback) for node, callback in entries
                if not (node._closing or node._closed)]
        released += len(entries) - len(kept)
        entries[:] = kept
    return released


def release_query_caches(*nodes: DOMNode) -> None:
    """Empty the ``query_one`` caches of long-lived ``nodes`` (refilled on next query)."""
    for node in nodes:
        node._query_one_cache.clear()


def release_render_caches() -> None:
    """Let the style caches (and rendered lines) of removed widgets be collected."""
    StylesCache.get_inner_outer.cache_clear()
