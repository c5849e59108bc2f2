"""What readers see under a post: its approved comments (replies one level deep), the
Webmentions grouped by kind, and the count. Pelican-free; only approved comments ever get here.

Comment text is Markdown, rendered and then cleaned by the one allow-list sanitizer that
cleans contributors' feed HTML; an author's link is an absolute http(s) URL or nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from markupsafe import Markup

from .comments import Comment
from .render import markdown_html
from .urls import safe_link

GROUPS = (("like", "Liked by"), ("repost", "Reposted by"), ("mention", "Mentioned by"))


@dataclass(frozen=True)
class CommentView:
    id: str
    anchor: str  # the fragment id on the post's page
    author: str
    author_url: str | None  # rel="ugc nofollow" when shown
    date: dt.datetime
    html: Markup
    source: str | None = None  # a Webmention's page
    kind: str | None = None
    replies: tuple[CommentView, ...] = ()


@dataclass(frozen=True)
class Conversation:
    comments: tuple[CommentView, ...] = ()  # oldest first, each with its replies
    groups: tuple[tuple[str, tuple[CommentView, ...]], ...] = ()  # ("Liked by", views)
    count: int = 0  # comments and replies (likes and plain mentions are not comments)

    @property
    def count_text(self) -> str:
        if self.count == 0:
            return "No comments yet"
        return "1 comment" if self.count == 1 else f"{self.count} comments"

    def flat(self) -> list[CommentView]:
        """Every comment and reply, oldest first (for feeds)."""
        views = [v for c in self.comments for v in (c, *c.replies)]
        return sorted(views, key=lambda v: (v.date, v.id))


def _view(comment: Comment, replies: tuple[CommentView, ...] = ()) -> CommentView:
    return CommentView(
        id=comment.id,
        anchor=f"comment-{comment.id}",
        author=comment.author,
        author_url=safe_link(comment.url),
        date=comment.date,
        html=markdown_html(comment.text),
        source=safe_link(comment.source),
        kind=comment.kind,
        replies=replies,
    )


def is_comment(comment: Comment) -> bool:
    """A written comment or a reply from another site; likes, reposts and mentions are not."""
    return comment.kind in (None, "reply")


def conversation(approved: Iterable[Comment]) -> Conversation:
    """The conversation under one post, from its approved comments only."""
    approved = sorted(approved, key=lambda c: (c.date, c.id))
    written = [c for c in approved if is_comment(c)]
    ids = {c.id for c in written}
    replies: dict[str, list[Comment]] = {}
    top: list[Comment] = []
    for c in written:
        if c.reply_to and c.reply_to in ids:
            replies.setdefault(c.reply_to, []).append(c)
        else:
            top.append(c)  # a reply whose parent is not shown stands on its own
    comments = tuple(_view(c, tuple(_view(r) for r in replies.get(c.id, []))) for c in top)
    groups = tuple(
        (label, views)
        for kind, label in GROUPS
        if (views := tuple(_view(c) for c in approved if (c.kind or "") == kind))
    )
    return Conversation(comments=comments, groups=groups, count=len(written))
