"""Stored XSS through the content plan and the care inbox (issue 8, "The suite that keeps it so": "… and later
the inbox and plan comments"; the corpus and the scanner are test_xss.py's).

Ways in: a plan item's caption written through the content API (integration) and through the plan editor's
form (the lead); the client's comments on the plan and on single posts, and the client's own publication
request, written on the public approval page (anonymous, the signed link). Pages: the plan editor, the
content calendar, the public approval page: 0 executable.

The inbox has no gateway page yet: a customer's message text from the Telegram and VK webhooks reaches staff
only as the conversation's JSON, which must be served as `application/json` (never rendered as HTML) on the
service's port and through the gateway's /api routing.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from .figures import record
from .identity import integration_headers
from .stack import Stack, payment_body, telegram_update, vk_message
from .test_xss import TEXT_PAYLOADS, Checker, marker

# k = caption by the content API, p = caption by the plan editor form, m = the client's comments (plan and
# posts), r = the client's publication request.
CONTENT_WAYS = "kpmr"


def _plan_of_new_deal(stack: Stack) -> dict[str, Any]:
    """A fresh deal of manager1 and its first content plan (the content service learns of the deal by NATS)."""
    deal = stack.api("clients", "POST", "/payments", json=payment_body(f"xss-co-{uuid.uuid4().hex[:8]}", "manager1",
                                                                       name="Content Xss Target"))
    deadline = time.monotonic() + 30
    while True:
        response = httpx.post(f"{stack.urls['content']}/api/content/deals/{deal['id']}/materials-received",
                              json={}, headers=integration_headers(), timeout=30)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.status_code == 200, response.text[:300]
    return response.json()[0]


def test_issue8_xss_corpus_through_plan_captions_and_client_comments_is_inert(stack: Stack) -> None:
    check = Checker()
    plan = _plan_of_new_deal(stack)
    plan_id, day = plan["id"], str(plan["first_day"])[:10]
    lead = stack.browser("lead")
    token = stack.csrf(lead)
    shown_on_plan: list[str] = []

    # 1. Captions through the content API (integration) and 2. through the plan editor's form (the lead).
    for n, template in enumerate(TEXT_PAYLOADS):
        m = marker("k", n)
        payload = template.format(m=m)
        response = httpx.post(f"{stack.urls['content']}/api/content/plans/{plan_id}/items", timeout=30,
                              headers=integration_headers(), json={"date": day, "kind": "feed", "caption": payload})
        if check.entry("caption (content API)", response, payload):
            shown_on_plan.append(m)
    for n, template in enumerate(TEXT_PAYLOADS):
        m = marker("p", n)
        payload = template.format(m=m)
        response = lead.post(f"/content/plans/{plan_id}/items",
                             data={"_csrf": token, "date": day, "kind": "feed", "caption": payload})
        if check.entry("caption (plan editor form)", response, payload):
            shown_on_plan.append(m)
    editor = lead.get(f"/content/plans/{plan_id}")
    check.page("captions", "plan editor", editor, shown_on_plan)

    # 3. The client's comments and 4. publication request, on the public approval page (the signed link).
    submitted = stack.api("content", "POST", f"/plans/{plan_id}/submit")
    link = submitted["token"]
    visitor = httpx.Client(base_url=stack.gateway, timeout=30, follow_redirects=False)
    approval = visitor.get(f"/approve/{link}")
    assert approval.status_code == 200, approval.text[:300]
    check.page("captions", "public approval page", approval, shown_on_plan)
    item_ids = re.findall(r'name="comment_([^"]+)"', approval.text)
    assert item_ids, "the approval page offers no comment on a post"
    form: dict[str, str] = {"decision": "changes"}
    if (csrf := re.search(r'name="_csrf" value="([^"]+)"', approval.text)) is not None:
        form["_csrf"] = csrf.group(1)
    comments: list[str] = []
    for n, template in enumerate(TEXT_PAYLOADS):
        m = marker("m", n)
        if n == 0:
            form["comment"] = template.format(m=m)          # a comment on the whole plan
        elif n - 1 < len(item_ids):
            form[f"comment_{item_ids[n - 1]}"] = template.format(m=m)
        else:
            continue
        comments.append(m)
    answered = visitor.post(f"/approve/{link}", data=form)
    if check.entry("client comments (approval page)", answered, "comments"):
        check.page("client comments", "approval page (answer)", answered, comments)
    else:
        comments = []
    requests: list[str] = []
    for n, template in enumerate(TEXT_PAYLOADS[:6]):
        m = marker("r", n)
        page = visitor.get(f"/approve/{link}")
        data = {"request_text": template.format(m=m), "request_date": day}
        if (csrf := re.search(r'name="_csrf" value="([^"]+)"', page.text)) is not None:
            data["_csrf"] = csrf.group(1)
        response = visitor.post(f"/approve/{link}/requests", data=data)
        if check.entry("client request (approval page)", response, data["request_text"]):
            requests.append(m)
            check.page("client request", "approval page (answer)", response, [m])
    everything = shown_on_plan + comments + requests
    check.page("all", "public approval page", visitor.get(f"/approve/{link}"), everything)
    final_editor = lead.get(f"/content/plans/{plan_id}")
    check.page("all", "plan editor", final_editor, everything)
    missing = [m for m in shown_on_plan + comments if m not in final_editor.text]
    check.page("all", "content calendar", lead.get("/content", params={"deal": plan["deal_id"], "at": day}),
               shown_on_plan)
    visitor.close()
    lead.close()
    record("XSS: plan captions, client comments and requests x content pages", check.tried,
           check.inert + check.refused_at_entry,
           f"refused at entry {check.refused_at_entry}, pages showing a payload {check.shown}, "
           f"executable {len(check.findings)}")
    assert not missing, f"captions or comments not on the plan editor (the check would be vacuous): {missing}"
    assert comments, "the client's comments were refused: the check of plan comments would be vacuous"
    assert check.shown >= 5, "the payloads did not reach the pages: the check would be vacuous"
    assert not check.findings, "\n".join(check.findings[:40])


def test_issue8_inbox_message_text_from_channel_webhooks_is_served_as_json_only(stack: Stack) -> None:
    ids = stack.foreign.engagement_ids
    sent: list[tuple[str, str]] = []   # (channel id, marker)
    for n, template in enumerate(TEXT_PAYLOADS):
        m = marker("t", n)
        update = telegram_update(880000 + n + uuid.uuid4().int % 10**6 * 100, 4_400_000 + n, template.format(m=m))
        response = stack.telegram(ids["telegram_channel_id"], update)
        assert response.status_code == 200, response.text[:200]
        sent.append((ids["telegram_channel_id"], m))
        m = marker("g", n)
        event = vk_message(f"xss{uuid.uuid4().hex[:12]}", 330_000 + n, template.format(m=m))
        response = httpx.post(f"{stack.urls['engagement']}/webhooks/vk/{ids['vk_channel_id']}",
                              content=json.dumps(event).encode(), headers={"Content-Type": "application/json"},
                              timeout=30)
        assert response.status_code == 200, response.text[:200]
        sent.append((ids["vk_channel_id"], m))
    for channel in {c for c, _m in sent}:
        wanted = [m for c, m in sent if c == channel]
        assert stack.wait_messages(channel, lambda texts, wanted=wanted: all(any(m in t for t in texts)
                                                                               for m in wanted)), channel
    tried = safe = 0
    problems: list[str] = []
    started = datetime.now(UTC)
    for channel in {c for c, _m in sent}:
        for conversation in stack.api("engagement", "GET", "/conversations", params={"channel": channel,
                                                                                     "limit": "200"}):
            for base in (stack.urls["engagement"], stack.gateway):
                response = httpx.get(f"{base}/api/engagement/conversations/{conversation['id']}",
                                     headers=integration_headers(), timeout=30)
                if not any(m in response.text for _c, m in sent):
                    continue
                tried += 1
                kind = response.headers.get("content-type", "")
                if response.status_code == 200 and kind.startswith("application/json"):
                    safe += 1
                else:
                    problems.append(f"{base} {conversation['id']}: {response.status_code} {kind}")
    record("XSS: inbox message text (Telegram, VK webhooks) served as JSON", tried, safe,
           f"payloads {len(sent)}; checked since {started:%H:%M:%S}")
    assert tried >= 2, "the payloads never reached a conversation"
    assert not problems, problems
