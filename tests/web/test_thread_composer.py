"""The thread page carries one reply composer and one flag form, not one per post: a
500-post page stays well under 600 KB. Without JavaScript a post's Reply and Flag links
reload the page with that form set for the post (only for a post on the page that the
viewer may reply to or flag)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import discussions, policy
from services.db import transaction
from tests.conftest import People
from tests.web.test_discussions_api import _forum


async def _thread_with_replies(
    f: dict[str, Any], sessions: async_sessionmaker[AsyncSession], people: People, n: int
) -> str:
    made = await f["ada"].post(
        f"/api/v1/questions/{f['question']}/threads",
        json={"title": "Busy", "body": "Opening " * 40, "anonymous": True},
    )
    assert made.status_code == 201, made.text
    thread = made.json()["id"]
    ben = (await people.user("ben")).id
    async with transaction(sessions) as session:
        actor = await policy.load_actor(session, user_id=ben or 0, is_administrator=False)
        for i in range(n):
            await discussions.reply(
                session,
                actor=actor,
                thread_id=thread,
                body=f"Reply {i}: " + "a considered thought about secure bases " * 9,
            )
    return str(thread)


async def test_a_500_post_page_has_one_composer_and_stays_small(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    thread = await _thread_with_replies(f, sessions, people, 500)
    page = await f["ada"].get(f"/threads/{thread}?per_page=200")
    assert page.status_code == 200
    html = page.text
    assert html.count("<article") == 201  # the opening and 200 replies
    assert len(page.content) < 600_000, len(page.content)
    assert html.count('name="body"') == 1 + html.count('name="version"')  # composer + edits
    assert html.count('name="reason"') == 1
    assert html.count('name="reply_to"') == 201 and html.count('name="flag"') == 200
    # One form behind every Vote and Delete button, one behind every Reply and Flag button.
    replies = html[html.index('id="replies"') : html.index('id="composer"')]
    assert replies.count("<form") == replies.count('name="version"')  # only one's own edits
    assert html.count('id="post-acts"') == 1 and html.count('id="pick"') == 1


async def test_reply_and_flag_links_set_the_forms_without_javascript(
    people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    f = await _forum(people, sessions)
    thread = await _thread_with_replies(f, sessions, people, 2)
    page = (await f["ada"].get(f"/threads/{thread}")).text
    post = re.findall(r'name="reply_to" value="([^"]+)"', page)[-1]
    # Reply submits the page's GET form: this page, same order and page, with reply_to.
    pick = re.search(r'<form id="pick" method="get" action="#composer" hidden>(.*?)</form>', page)
    assert pick is not None
    assert re.findall(r'name="(\w+)" value="([^"]*)"', pick.group(1)) == [
        ("sort", "oldest"),
        ("page", "1"),
    ]
    assert f'<button form="pick" name="reply_to" value="{post}">' in page

    replying = (await f["ada"].get(f"/threads/{thread}?reply_to={post}")).text
    assert f'name="parent" value="{post}"' in replying
    flagging = (await f["ada"].get(f"/threads/{thread}?flag={post}")).text
    assert f'action="/posts/{post}/flag"' in flagging
    assert 'id="flag-panel"' in flagging and 'id="flag-panel" data-flag-action' in flagging

    # Not a post on the page, or one the viewer may not flag (their own): nothing is set.
    own = re.findall(r'name="reply_to" value="([^"]+)"', page)[0]
    for bogus in ("../../api/v1/cohorts", "nope"):
        shown = (await f["ada"].get(f"/threads/{thread}?reply_to={bogus}&flag={bogus}")).text
        assert 'name="parent" value=""' in shown and bogus not in shown
    mine = (await f["ada"].get(f"/threads/{thread}?flag={own}")).text
    assert f'/posts/{own}/flag"' not in mine

    replied = await f["ada"].post(
        f"/threads/{thread}/posts",
        data={"body": "Nested, without JavaScript", "parent": post},
    )
    assert replied.status_code == 303, replied.text
    tree = (await f["ada"].get(f"/api/v1/threads/{thread}")).json()
    nested = [p for p in tree["posts"] if "Nested" in p["body_html"]]
    assert nested and nested[0]["parent"] == post
