"""A small knowledge folder for tests: three help articles (password reset, shipping times, gift cards) that
the local engine can answer from, written as Markdown files the way `KNOWLEDGE_PATH` expects them.
"""

from __future__ import annotations

from pathlib import Path

ARTICLES = {
    "reset-password": (
        "Reset your password",
        "If you forgot your password, open the sign-in page and choose \"Forgot password\". Enter the email "
        "address on your account and we send you a reset link within a few minutes. The link works for 24 "
        "hours. If the email does not arrive, check your spam folder.",
    ),
    "shipping-times": (
        "How long shipping takes",
        "Standard shipping takes 3 to 5 business days within the country and 7 to 14 days abroad. Express "
        "shipping arrives in 1 to 2 business days. You get a tracking link by email as soon as the parcel leaves "
        "our warehouse.",
    ),
    "gift-cards": (
        "Gift cards",
        "Gift cards are sold in amounts from 10 to 500 and never expire. Redeem one at checkout by entering the "
        "16-digit code. A gift card cannot be exchanged for cash.",
    ),
}


def write_knowledge(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for article_id, (title, body) in ARTICLES.items():
        (folder / f"{article_id}.md").write_text(f"# {title}\n\n{body}\n", encoding="utf-8")
    return folder
