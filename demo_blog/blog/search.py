"""The search index: writing entries (search-index group, rebuild job) and querying them.

Writes follow one rule, "the newer version wins": an entry is only overwritten by a
version of its post newer than the one it holds. The log already hands the group each
post's events in order; the rule also keeps a late writer harmless (a dead letter
reprocessed after a later change, a replay, the rebuild job running beside the group),
so a post updated and then deleted never comes back.
"""

from __future__ import annotations

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank
from django.db import connection
from django.db.models import F
from django.utils.html import escape
from django.utils.safestring import mark_safe

from .models import SearchEntry

# One statement, so the version check and the write cannot be split by another writer.
_UPSERT = """
INSERT INTO blog_searchentry (post_id, version, visible, author_id, author_name, title, body)
VALUES (%(post_id)s, %(version)s, %(visible)s, %(author_id)s, %(author_name)s,
        %(title)s, %(body)s)
ON CONFLICT (post_id) DO UPDATE
   SET version = EXCLUDED.version, visible = EXCLUDED.visible,
       author_id = EXCLUDED.author_id, author_name = EXCLUDED.author_name,
       title = EXCLUDED.title, body = EXCLUDED.body
 WHERE blog_searchentry.version {op} EXCLUDED.version
"""


def apply(*, post_id: int, version: int, visible: bool, author_id: int, author_name: str,
          title: str, body: str, same_version_too: bool = False) -> bool:
    """Write one post's entry unless the index already holds a newer version (or, unless
    `same_version_too`, the same one). Returns whether the entry changed."""
    sql = _UPSERT.format(op="<=" if same_version_too else "<")
    with connection.cursor() as cursor:
        cursor.execute(sql, {"post_id": post_id, "version": version, "visible": visible,
                             "author_id": author_id, "author_name": author_name,
                             "title": title, "body": body})
        return cursor.rowcount == 1


def hide(*, post_id: int, version: int, author_id: int, author_name: str, title: str) -> bool:
    """Make a post unsearchable as of `version` (unpublished or deleted). The text is
    dropped; the row stays with its version so nothing older can make it visible again."""
    return apply(post_id=post_id, version=version, visible=False, author_id=author_id,
                 author_name=author_name, title=title, body="")


# ts_headline returns the post's own text: it marks matches with these (private-use
# characters no author types), and marked() escapes the text before making them <mark>.
_START, _STOP = "\ue000", "\ue001"


def marked(headline: str) -> str:
    """A headline as safe HTML: the text escaped, the matches in <mark>."""
    return mark_safe(escape(headline).replace(_START, "<mark>").replace(_STOP, "</mark>"))


def search(text: str, limit: int = 20) -> list[SearchEntry]:
    """Visible entries matching `text`, best first, with highlighted snippets
    (`snippet`, `title_marked`: safe HTML)."""
    query = SearchQuery(text, config="english", search_type="websearch")
    found = (SearchEntry.objects.filter(visible=True, vector=query)
             .annotate(rank=SearchRank(F("vector"), query),
                       snippet_text=SearchHeadline("body", query, config="english",
                                                   start_sel=_START, stop_sel=_STOP,
                                                   max_words=30, min_words=12),
                       title_text=SearchHeadline("title", query, config="english",
                                                 start_sel=_START, stop_sel=_STOP,
                                                 highlight_all=True))
             .order_by("-rank", "-post_id")[:limit])
    results = list(found)
    for entry in results:
        entry.snippet, entry.title_marked = marked(entry.snippet_text), marked(entry.title_text)
    return results
