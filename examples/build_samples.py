#!/usr/bin/env python3
"""Build Seam's bundled offline sample data from the Bitext customer-support dataset.

Usage:
    python examples/build_samples.py [--data PATH_TO_SHARED_DATA]

The script reads
    <data>/bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv
(default ``<data>`` is ``<repo>/../shared/data``) and writes these files into ``examples/``:

* ``history.jsonl``  ~2,400 resolved past tickets (September to mid-November 2026)
* ``tickets.jsonl``  ~600 tickets to replay (mid to end of November 2026), including
  30 hand-written tickets (ids ``own-001`` ...)
* ``LICENSE-CDLA-Sharing-1.0.txt``  a copy of the Bitext dataset license

Each ticket follows Seam's ticket contract (id, subject, messages, requester, tags,
priority, created_at, resolution). The customer message is the Bitext ``instruction``.
``resolution.answer`` is the Bitext ``response`` with its ``{{Placeholders}}`` replaced
by values for the fictional shop "Northwind Goods". ``resolution.answer_id`` is the
id of a hand-written article in ``examples/knowledge/``. Intents that must not be
answered automatically (contact_human_agent, complaint, get_refund, payment_issue,
delete_account) have ``answer_id: null`` in tickets.jsonl. In history.jsonl a person
resolved refunds, payment issues and account deletions with a macro (``macro-...``),
and requests for a human and complaints with a reply of their own (``answer_id: null``:
no macro or article was reused), as happens in a real queue.

The output is deterministic: it uses a fixed random seed and only the standard
library. The knowledge articles are static, hand-written files. This script only
checks that they exist and never writes to them.

License: history.jsonl and tickets.jsonl are derived from the Bitext "Customer Support
LLM Chatbot Training Dataset" (https://github.com/bitext/customer-support-llm-chatbot-training-dataset,
file data/train/Bitext_Sample_Customer_Support_Training_Dataset.csv at commit
337b96868e02b40a05f9c0df3290c65a15ea573e) and are shared under the Community Data
License Agreement - Sharing, Version 1.0 (CDLA-Sharing-1.0). See
LICENSE-CDLA-Sharing-1.0.txt and README.md in this folder. The hand-written tickets,
the placeholder values and this script are original work of the Seam project.
"""

import argparse
import csv
import json
import random
import re
from pathlib import Path

SEED = 20261101
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CSV_REL = Path("bitext_customer_support") / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
LICENSE_REL = Path("bitext_customer_support") / "LICENSE.txt"

N_HISTORY = 2000
N_TICKETS_BITEXT = 570  # plus the hand-written OWN_TICKETS -> about 600
THREAD_SHARE = 0.10

# --------------------------------------------------------------------------- intents

# intent -> knowledge article id (answerable), or macro id used by a human (not answerable)
ARTICLE = {
    "cancel_order": "cancel-order",
    "change_order": "change-order",
    "place_order": "place-order",
    "track_order": "track-order",
    "change_shipping_address": "change-shipping-address",
    "set_up_shipping_address": "set-up-shipping-address",
    "recover_password": "recover-password",
    "registration_problems": "registration-problems",
    "create_account": "create-account",
    "edit_account": "edit-account",
    "switch_account": "switch-account",
    "check_refund_policy": "check-refund-policy",
    "track_refund": "track-refund",
    "delivery_options": "delivery-options",
    "delivery_period": "delivery-period",
    "check_payment_methods": "check-payment-methods",
    "check_invoice": "check-invoice",
    "get_invoice": "get-invoice",
    "newsletter_subscription": "newsletter-subscription",
    "check_cancellation_fee": "check-cancellation-fee",
    "contact_customer_service": "contact-customer-service",
    "review": "review",
}
# None: a person wrote a reply of their own rather than reusing a macro.
HUMAN_MACRO = {
    "contact_human_agent": None,
    "complaint": None,
    "get_refund": "macro-refund-request",
    "payment_issue": "macro-payment-issue",
    "delete_account": "macro-delete-account",
}
# articles that exist in knowledge/ although no Bitext intent maps to them
EXTRA_ARTICLES = ["delete-account", "gift-cards", "warranty", "price-match"]

CATEGORY_TAG = {
    "ACCOUNT": "account",
    "CANCELLATION_FEE": "billing",
    "CONTACT": "general",
    "DELIVERY": "shipping",
    "FEEDBACK": "feedback",
    "INVOICE": "billing",
    "NEWSLETTER": "marketing",
    "ORDER": "orders",
    "PAYMENT": "payments",
    "REFUND": "returns",
    "SHIPPING_ADDRESS": "shipping",
}

SUBJECTS = {
    "cancel_order": ["Cancel my order", "Order cancellation", "Please cancel", "Cancelling a purchase"],
    "change_order": ["Change to my order", "Edit order", "Wrong item in my order", "Update my order"],
    "place_order": ["Placing an order", "How do I order?", "New order", "Want to buy"],
    "track_order": ["Where is my order?", "Order status", "Tracking", "Package not here yet"],
    "change_shipping_address": ["Address change", "Wrong delivery address", "Update shipping address"],
    "set_up_shipping_address": ["New shipping address", "Add address", "Shipping address setup"],
    "recover_password": ["Password reset", "Can't log in", "Forgot password", "Locked out"],
    "registration_problems": ["Sign-up problem", "Can't register", "Registration error"],
    "create_account": ["New account", "Sign up", "Creating an account"],
    "edit_account": ["Update my details", "Account details", "Change profile info"],
    "switch_account": ["Change account type", "Account switch", "Upgrade account"],
    "delete_account": ["Close my account", "Delete account", "Account removal"],
    "check_refund_policy": ["Refund policy", "Returns question", "Money back?"],
    "get_refund": ["Refund request", "I want a refund", "Money back please", "Refund"],
    "track_refund": ["Refund status", "Where is my refund?", "Refund not received"],
    "delivery_options": ["Shipping options", "Delivery methods", "Shipping question"],
    "delivery_period": ["Delivery time", "When will it arrive?", "How long is shipping?"],
    "check_payment_methods": ["Payment options", "Payment methods", "Can I pay with..."],
    "payment_issue": ["Payment problem", "Payment failed", "Charged incorrectly", "Card declined"],
    "check_invoice": ["Invoice question", "Checking my invoice", "Bill"],
    "get_invoice": ["Invoice request", "Need an invoice", "Invoice copy"],
    "newsletter_subscription": ["Newsletter", "Unsubscribe", "Email subscription"],
    "check_cancellation_fee": ["Cancellation fee?", "Fees for cancelling", "Cancellation charges"],
    "contact_customer_service": ["Contact info", "How to reach you", "Customer service hours"],
    "contact_human_agent": ["Speak to someone", "Need a person", "Agent please", "Human please"],
    "complaint": ["Complaint", "Not happy", "Very disappointed", "Formal complaint"],
    "review": ["Feedback", "Leaving a review", "My review"],
}
GENERIC_SUBJECTS = ["Question", "Help", "Hi", "Support request", "Quick question", "Hello",
                    "Help needed", "Re: your order", "Urgent", "Issue"]

# Opening messages for multi-message threads (the Bitext instruction is the latest message).
THREAD_OPENERS = {
    "account": ["Hi, I have a question about my account.",
                "Hello, something isn't working with my Northwind account.",
                "Hey there, need some help with my login/profile."],
    "billing": ["Hi, I have a billing question.",
                "Hello, question about a charge and the paperwork for it.",
                "Hi, can you help me with something billing related?"],
    "general": ["Hello?", "Hi, is anyone there?", "I need some help please."],
    "shipping": ["Hi, I have a question about delivery.",
                 "Hello, it's about shipping for my order.",
                 "Hey, quick question about where my stuff is going."],
    "feedback": ["Hi, I want to tell you about my experience.",
                 "Hello, I have some feedback.", "I wanted to share something about my last order."],
    "marketing": ["Hi, it's about your emails.", "Hello, question about the newsletter."],
    "orders": ["Hi, I have a question about my order.",
               "Hello, I placed an order recently and need help.",
               "Hey, it's about an order."],
    "payments": ["Hi, I have a question about paying.",
                 "Hello, something about payment at checkout."],
    "returns": ["Hi, this is about a return.", "Hello, I have a question about getting money back.",
                "Hi, I sent something back recently."],
}
AGENT_FOLLOWUPS = [
    "Hi {first}, thanks for reaching out to Northwind Goods! Could you tell me a bit more about what you need, and include your order number if it's about an order?",
    "Hello {first}, happy to help. What exactly can I do for you today?",
    "Hi {first}, thanks for your message. Can you give me a few more details so I can point you in the right direction?",
    "Hi {first}! Sorry for the wait. What would you like help with?",
]

FIRST_NAMES = ["Ava", "Liam", "Maya", "Noah", "Sofia", "Ethan", "Chloe", "Lucas", "Priya", "Mateo",
               "Hannah", "Omar", "Grace", "Diego", "Emily", "Kenji", "Zoe", "Samuel", "Amara", "Leo",
               "Isabel", "Arjun", "Nora", "Felix", "Leah", "Tariq", "Ruby", "Jonas", "Mei", "Caleb",
               "Elena", "Marcus", "Aisha", "Owen", "Julia", "Ravi", "Clara", "Hugo", "Fatima", "Theo"]
LAST_NAMES = ["Smith", "Garcia", "Nguyen", "Patel", "Johnson", "Kim", "Müller", "Rossi", "Brown",
              "Okafor", "Silva", "Cohen", "Wilson", "Tanaka", "Novak", "Martin", "Lopez", "Khan",
              "Andersen", "Dubois", "Walker", "Chen", "Murphy", "Ivanova", "Reyes", "Schmidt",
              "Hughes", "Costa", "Ahmed", "Larsen"]

# --------------------------------------------------------------------------- placeholders

PHONE = "+1 (555) 014-2370"
EMAIL = "support@northwind-goods.example"
SITE = "northwind-goods.example"
HOURS = "8 am-8 pm ET on weekdays and 9 am-5 pm ET on Saturdays"
GENERIC = "the details in our Help Center"

# exact-case entries are checked first, then the lower-cased key
PLACEHOLDERS = {
    "Refund Processing Time": "5",  # "within {{Refund Processing Time}} business days"
    "refund processing time": "5 business days",
    "refund policy": "30-day refund policy",
    "Refund Policy": "Refund Policy",
}
PLACEHOLDERS_CI = {
    "website name": "Northwind Goods website",
    "website name anonymized": SITE,
    "website url": SITE,
    "company website": SITE,
    "service website": SITE,
    "website": "website",
    "website or app": "website or app",
    "website/app name": "Northwind Goods",
    "company name": "Northwind Goods",
    "mobile app": "Northwind Goods app",
    "mobile app name": "Northwind Goods app",
    "customer support phone number": PHONE,
    "customer support phone number anonymized": PHONE,
    "support phone number": PHONE,
    "customer service phone number": PHONE,
    "customer assistance phone number": PHONE,
    "complaint phone number": PHONE,
    "phone number": f"phone ({PHONE})",
    "customer support email": EMAIL,
    "customer support email address": EMAIL,
    "support email": EMAIL,
    "support email address": EMAIL,
    "customer service email": EMAIL,
    "customer service email address": EMAIL,
    "complaint email address": EMAIL,
    "feedback email address": EMAIL,
    "email address": f"email ({EMAIL})",
    "customer support email or phone number": f"{EMAIL} or {PHONE}",
    "customer support contact information": f"{PHONE} or {EMAIL}",
    "customer support availability": HOURS,
    "customer support availability anonymized": HOURS,
    "support team availability": HOURS,
    "customer support hours": "weekdays 8 am-8 pm ET and Saturdays 9 am-5 pm ET",
    "customer assistance hours": HOURS,
    "operating hours": HOURS,
    "customer service hours": HOURS,
    "business hours start time": "8 am ET",
    "business hours end time": "8 pm ET",
    "customer service start time": "8 am ET",
    "customer service end time": "8 pm ET",
    "operating hours weekdays": "8 am to 8 pm ET",
    "operating hours weekends": "Saturday 9 am to 5 pm ET, closed on Sunday",
    "operating hours holidays": "closed on US public holidays",
    "live chat": "Live Chat",
    "live chat anonymized": "Live Chat",
    "customer support channel": "Live Chat or phone",
    "support channel": "Live Chat or phone",
    "number of days": "30",
    "refund period": "30",
    "percentage or full": "full",
    "percentage": "50%",
    "refund timeframe": "14 days",
    "refund processing time frame": "5 business days",
    "specific situations covered by refund policy":
        "unused items returned within 30 days and damaged, faulty or incorrect items",
    "provide instructions to initiate a refund": "start a return under Account > Orders > Return items",
    "provide instructions to request a refund": "start a return under Account > Orders > Return items",
    "situations where customers can request reimbursements":
        "Unused items returned in their original packaging within 30 days of delivery",
    "list of circumstances where customers can request refunds":
        "Unused items returned in their original packaging within 30 days of delivery",
    "additional situations where reimbursements are available":
        "Damaged, faulty or incorrect items reported within 14 days of delivery",
    "additional circumstances where refunds are allowed":
        "Damaged, faulty or incorrect items reported within 14 days of delivery",
    "case 1": "Unused items returned within 30 days of delivery",
    "case 2": "Items that arrived damaged or faulty",
    "case 3": "Orders where we sent the wrong item",
    "situation 1": "Unused items returned within 30 days of delivery",
    "situation 2": "Items that arrived damaged or faulty",
    "situation 3": "Orders where we sent the wrong item",
    "refund policy details": "unused items can be returned within 30 days of delivery for a full refund",
    "conditions for refund": "the item is unused and in its original packaging, or arrived damaged or faulty",
    "refundable situations": "unused items returned within 30 days and damaged or faulty products",
    "list of eligible situations for refunds": "damaged, faulty or wrong items and unused returns within 30 days",
    '"refund policy" or "money back guarantee"': '"Returns & refunds"',
    "response time": "one business day",
    "claim details": "your order number, a short description of what happened and any photos",
    "complaint details": "your order number, a short description of what happened and any photos",
    "order number": "order number",
    "tracking number": "tracking number",
    "billing section": "Billing section",
    "view or check invoice": "View invoice",
    "review website 1": "Trustpilot",
    "review website 2": "Google",
    "review website 3": "Sitejabber",
    "payment method anonymized": "Visa ending in 4421",
}
UI_LABEL = re.compile(r"[A-Z][A-Za-z]*(?:[ /](?:[A-Z][A-Za-z]*|or|a|an|to|by|of|for|with|as|and))*")
PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")


def fill_placeholders(text, ctx):
    """Replace every {{Placeholder}} in a Bitext response with a Northwind Goods value."""
    # "your {{Website Name}} account" reads better with the plain shop name
    text = re.sub(r"\{\{Website Name\}\}(?= (?:account|login|app|platform|profile|website|site|homepage|page))", "Northwind Goods", text)

    def repl(m):
        key = m.group(1).strip()
        low = key.lower()
        if key in PLACEHOLDERS:
            return PLACEHOLDERS[key]
        if low in PLACEHOLDERS_CI:
            return PLACEHOLDERS_CI[low]
        if "anonymized" in low:
            if low.startswith("name"):
                return ctx["first"]
            if "date" in low:
                return ctx["purchase_date"]
            if "invoice" in low or "bill" in low:
                return ctx["invoice_no"]
            if any(w in low for w in ("order", "purchase")):
                return ctx["order_no"]
            return GENERIC
        if re.fullmatch(r"\d{6,}", key):  # an order number quoted from the customer message
            return key
        if re.fullmatch(r"[0-9A-F]{16,}", key):
            return ctx["order_no"]
        if UI_LABEL.fullmatch(key) and len(key.split()) <= 5:
            return key  # a menu/button label, shown as-is
        return GENERIC

    out = PLACEHOLDER.sub(repl, text)
    assert "{{" not in out and "}}" not in out, out
    return out


# --------------------------------------------------------------------------- own tickets

# Hand-written tickets (original work). answer_id None = must go to a person / no article.
OWN_TICKETS = [
    # asking for a human, varied phrasings
    {"subject": "Need a human", "body": "can I talk to a real person please", "tag": "general", "answer_id": None},
    {"subject": "", "body": "operator please", "tag": "general", "answer_id": None},
    {"subject": "Not a bot", "body": "I want to speak to a human being, not a bot.", "tag": "general", "answer_id": None},
    {"subject": "Still stuck", "body": "Is there an actual person I can call? Your chat keeps sending me the same help article and it doesn't answer my question.",
     "tag": "general", "answer_id": None,
     "thread": ["My parcel says delivered but it isn't here.",
                "Hi {first}, sorry to hear that! Here's our guide on tracking your order: if the tracking hasn't moved for more than 3 business days, reply with your order number."]},
    {"subject": "live agent", "body": "pls connect me w/ a live agent asap", "tag": "general", "answer_id": None, "priority": "high"},
    {"subject": "", "body": "spaek to somone in customer servce", "tag": "general", "answer_id": None},
    {"subject": "Escalation", "body": "Could you put me through to a manager? I've explained this twice already and I'm getting nowhere.",
     "tag": "general", "answer_id": None, "priority": "high"},
    {"subject": "", "body": "agent", "tag": "general", "answer_id": None},
    {"subject": "Callback request", "body": "I'd like a callback from a member of staff about order NW-482913, not an automated reply. My number is on the account.",
     "tag": "orders", "answer_id": None},
    # angry
    {"subject": "Third failed delivery!!", "body": "This is the THIRD time my order has been 'out for delivery' and it never shows up. Absolutely ridiculous. I want my money back today.",
     "tag": "shipping", "answer_id": None, "priority": "urgent"},
    {"subject": "Double charge", "body": "You charged my card TWICE for the same order. Fix this now or I'm disputing it with my bank.",
     "tag": "payments", "answer_id": None, "priority": "urgent"},
    {"subject": "WORST SERVICE EVER", "body": "WORST SERVICE EVER. The sofa arrived with a broken leg and nobody answers your phone line. What a joke.",
     "tag": "feedback", "answer_id": None, "priority": "high"},
    {"subject": "where is my money", "body": "I've been waiting 3 weeks for a refund you said was 'issued'. Where is my money?? Stop telling me to wait.",
     "tag": "returns", "answer_id": None, "priority": "high",
     "thread": ["Hi, my refund for order NW-390115 still hasn't arrived.",
                "Hi {first}, I can see the refund was issued on our side. Card refunds can take 3-10 business days to appear, depending on your bank."]},
    {"subject": "STOP", "body": "stop emailing me your stupid newsletter, I've unsubscribed twice already!!!", "tag": "marketing", "answer_id": None, "priority": "high"},
    {"subject": "Rude driver", "body": "Your delivery driver was rude to my mother and threw the parcel over the fence. I expect an apology and an explanation.",
     "tag": "feedback", "answer_id": None, "priority": "high"},
    # topics no article covers
    {"subject": "Student discount?", "body": "Do you offer a student discount? I couldn't find anything on the site.", "tag": "general", "answer_id": None, "priority": "low"},
    {"subject": "Oak table question", "body": "Is the Harbor oak dining table made from FSC-certified wood? And what finish is used on the top?", "tag": "general", "answer_id": None, "priority": "low"},
    {"subject": "Jobs", "body": "Are you hiring for the holiday season? How do I apply for a warehouse job?", "tag": "general", "answer_id": None, "priority": "low"},
    {"subject": "Showroom", "body": "Do you have a physical store in Chicago where I can see the wool rug before buying it?", "tag": "general", "answer_id": None, "priority": "low"},
    {"subject": "Becoming a supplier", "body": "We make handmade ceramics and would like to sell through Northwind Goods. Who should I talk to about becoming a supplier?", "tag": "general", "answer_id": None, "priority": "low"},
    {"subject": "Assembly instructions", "body": "I lost the paper assembly instructions for the Harbor bookshelf. Can you send me a PDF?", "tag": "orders", "answer_id": None},
    {"subject": "Privacy", "body": "Do you share my personal data with third parties? I'd like a copy of everything you store about me.", "tag": "account", "answer_id": None},
    # topics covered only by articles that Bitext never asks about
    {"subject": "Gift card balance", "body": "how do i check the balance on my gift card? got it for my birthday", "tag": "billing", "answer_id": "gift-cards", "priority": "low"},
    {"subject": "Kettle stopped working", "body": "My electric kettle stopped working after 5 months. Is it still under warranty and what do I do?", "tag": "orders", "answer_id": "warranty"},
    {"subject": "Cheaper elsewhere", "body": "I saw the same floor lamp for $20 less at another store. Will you match the price?", "tag": "orders", "answer_id": "price-match"},
    # clearly matching an article
    {"subject": "Reset email not arriving", "body": "Hi, I forgot my password and I'm not sure the reset email arrived. What should I do?", "tag": "account", "answer_id": "recover-password"},
    {"subject": "Express shipping", "body": "How long does express shipping take once my order has shipped?", "tag": "shipping", "answer_id": "delivery-period"},
    {"subject": "Invoice for expenses", "body": "Where can I download the invoice for my last order? I need it for my expense report.", "tag": "billing", "answer_id": "get-invoice"},
    {"subject": "Wrong colour ordered", "body": "How do I cancel order NW-551203? I ordered the wrong colour by mistake.", "tag": "orders", "answer_id": "cancel-order"},
    {"subject": "Klarna?", "body": "what payment methods do you take? is klarna ok", "tag": "payments", "answer_id": "check-payment-methods"},
]

# --------------------------------------------------------------------------- helpers


def norm(text):
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def load_rows(csv_path):
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    seen, unique = set(), []
    for row in rows:  # drop near-duplicate utterances so that the two files are clearly disjoint
        key = norm(row["instruction"])
        if key and key not in seen:
            seen.add(key)
            unique.append(row)
    return rows, unique


def allocate(counts, total):
    """Largest-remainder split of `total` across intents proportional to `counts`."""
    grand = sum(counts.values())
    raw = {k: total * v / grand for k, v in counts.items()}
    out = {k: int(v) for k, v in raw.items()}
    rest = total - sum(out.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - out[k]), k))[:rest]:
        out[k] += 1
    return out


def make_subject(rng, body, intent):
    r = rng.random()
    if r < 0.10:
        return ""
    if r < 0.17:
        return rng.choice(GENERIC_SUBJECTS)
    if r < 0.55 and intent in SUBJECTS:
        return rng.choice(SUBJECTS[intent])
    words = body.strip().split()
    subj = " ".join(words[:8]).rstrip(" ?!.,;:")
    if len(words) > 8:
        subj += "..."
    return subj[:1].upper() + subj[1:]


def make_requester(rng):
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    plain = last.lower().replace("ü", "u")
    style = rng.randrange(4)
    if style == 0:
        local = f"{first.lower()}.{plain}"
    elif style == 1:
        local = f"{first.lower()}{plain[0]}"
    elif style == 2:
        local = f"{first[0].lower()}{plain}{rng.randrange(10, 99)}"
    else:
        local = f"{first.lower()}_{plain}"
    return {"name": f"{first} {last}", "email": f"{local}@example.com"}


def make_priority(rng, intent, tags):
    hot = "W" in tags or intent in ("complaint", "payment_issue", "get_refund", "contact_human_agent")
    cold = intent in ("newsletter_subscription", "review", "check_payment_methods", "create_account")
    if hot:
        weights = [("low", 0.02), ("normal", 0.55), ("high", 0.31), ("urgent", 0.12)]
    elif cold:
        weights = [("low", 0.35), ("normal", 0.60), ("high", 0.05), ("urgent", 0.0)]
    else:
        weights = [("low", 0.10), ("normal", 0.78), ("high", 0.10), ("urgent", 0.02)]
    x, acc = rng.random(), 0.0
    for name, w in weights:
        acc += w
        if x < acc:
            return name
    return "normal"


# support traffic follows US daytime (hour weights in UTC)
HOUR_WEIGHT = [3, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 3, 5, 7, 9, 10, 10, 10, 9, 9, 8, 7, 5, 4]


def timestamps(rng, n, start_day, n_days):
    """n sorted minute offsets (from 2026-09-01 00:00Z) spread over the given day range."""
    out = []
    while len(out) < n:
        minute = rng.randrange(n_days * 1440)
        if rng.random() < HOUR_WEIGHT[(minute // 60) % 24] / 10:
            out.append(start_day * 1440 + minute)
    return sorted(out)


MONTH_DAYS = [(9, 30), (10, 31), (11, 30), (12, 31)]


def iso(minute):
    day, rem = divmod(minute, 1440)
    for month, length in MONTH_DAYS:
        if day < length:
            break
        day -= length
    return f"2026-{month:02d}-{day + 1:02d}T{rem // 60:02d}:{rem % 60:02d}:00Z"


def build_ticket(rng, tid, minute, body, subject, tag, priority, resolution, thread=None, requester=None):
    requester = requester or make_requester(rng)
    first = requester["name"].split()[0]
    messages = []
    if thread:
        opener, reply = thread
        t_reply = minute + rng.randrange(8, 240)
        t_last = t_reply + rng.randrange(3, 600)
        messages.append({"author": "customer", "body": opener, "created_at": iso(minute)})
        messages.append({"author": "agent", "body": reply.format(first=first), "created_at": iso(t_reply)})
        messages.append({"author": "customer", "body": body, "created_at": iso(t_last)})
    else:
        messages.append({"author": "customer", "body": body, "created_at": iso(minute)})
    return {
        "id": tid,
        "subject": subject,
        "messages": messages,
        "requester": requester,
        "tags": [tag],
        "priority": priority,
        "created_at": iso(minute),
        "resolution": resolution,
    }


def bitext_ticket(rng, tid, minute, row, for_history):
    intent = row["intent"]
    tag = CATEGORY_TAG[row["category"]]
    requester = make_requester(rng)
    ctx = {
        "first": requester["name"].split()[0],
        "order_no": f"NW-{rng.randrange(100000, 999999)}",
        "invoice_no": f"INV-2026-{rng.randrange(10000, 99999)}",
        "purchase_date": f"{rng.choice(['August', 'September', 'October'])} {rng.randrange(1, 29)}, 2026",
    }
    answer = fill_placeholders(row["response"].replace("\r\n", "\n").strip(), ctx)
    if intent in ARTICLE:
        resolution = {"answer_id": ARTICLE[intent], "answer": answer}
    elif for_history:
        resolution = {"answer_id": HUMAN_MACRO[intent], "answer": answer}
    else:
        resolution = {"answer_id": None, "answer": answer}
    thread = None
    if rng.random() < THREAD_SHARE:
        thread = (rng.choice(THREAD_OPENERS[tag]), rng.choice(AGENT_FOLLOWUPS))
    return build_ticket(rng, tid, minute, row["instruction"].strip(), make_subject(rng, row["instruction"], intent),
                        tag, make_priority(rng, intent, row["tags"]), resolution, thread, requester=requester)


def article_body(knowledge_dir, article_id):
    lines = (knowledge_dir / f"{article_id}.md").read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[1:]).strip()


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data",
                    help="folder containing bitext_customer_support/ (default: <repo>/../shared/data)")
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: examples/)")
    args = ap.parse_args()

    knowledge = HERE / "knowledge"
    needed = sorted(set(ARTICLE.values()) | set(EXTRA_ARTICLES)
                    | {t["answer_id"] for t in OWN_TICKETS if t["answer_id"]})
    missing = [a for a in needed if not (knowledge / f"{a}.md").is_file()]
    if missing:
        raise SystemExit(f"missing knowledge articles in {knowledge}: {', '.join(missing)}")

    all_rows, rows = load_rows(args.data / CSV_REL)
    intents = sorted({r["intent"] for r in rows})
    assert set(intents) == set(ARTICLE) | set(HUMAN_MACRO), intents

    rng = random.Random(SEED)
    by_intent = {i: [r for r in rows if r["intent"] == i] for i in intents}
    counts = {i: len(by_intent[i]) for i in intents}
    n_t = allocate(counts, N_TICKETS_BITEXT)
    n_h = allocate(counts, N_HISTORY)
    ticket_rows, history_rows = [], []
    for i in intents:
        # To stay within the size budget, use the rows with the shortest responses
        # (about 70% of each intent), then split them at random.
        pool = sorted(by_intent[i], key=lambda r: (len(r["response"]), r["instruction"]))
        by_intent[i] = pool[: n_t[i] + n_h[i]]
        rng.shuffle(by_intent[i])
        ticket_rows += by_intent[i][: n_t[i]]
        history_rows += by_intent[i][n_t[i]: n_t[i] + n_h[i]]
    rng.shuffle(ticket_rows)
    rng.shuffle(history_rows)

    # timeline: 2026-09-01 .. 2026-11-30, history first, at an even ticket rate
    total_days = 91
    hist_days = round(total_days * N_HISTORY / (N_HISTORY + N_TICKETS_BITEXT + len(OWN_TICKETS)))
    hist_minutes = timestamps(rng, len(history_rows), 0, hist_days)
    history = [bitext_ticket(rng, f"h-{k + 1:05d}", m, row, True)
               for k, (m, row) in enumerate(zip(hist_minutes, history_rows))]

    # tickets: Bitext rows and hand-written ones, interleaved in time order
    replay = [("bitext", row) for row in ticket_rows] + [("own", k) for k in range(len(OWN_TICKETS))]
    rng.shuffle(replay)
    tick_minutes = timestamps(rng, len(replay), hist_days, total_days - hist_days)
    tickets, n_bitext = [], 0
    for m, (kind, item) in zip(tick_minutes, replay):
        if kind == "bitext":
            n_bitext += 1
            tickets.append(bitext_ticket(rng, f"t-{n_bitext:05d}", m, item, False))
        else:
            own = OWN_TICKETS[item]
            aid = own["answer_id"]
            answer = article_body(knowledge, aid) if aid else None
            tickets.append(build_ticket(rng, f"own-{item + 1:03d}", m, own["body"], own["subject"], own["tag"],
                                        own.get("priority", "normal"), {"answer_id": aid, "answer": answer},
                                        own.get("thread")))

    # sanity checks
    hist_bodies = {norm(t["messages"][-1]["body"]) for t in history}
    tick_bodies = {norm(t["messages"][-1]["body"]) for t in tickets}
    assert not hist_bodies & tick_bodies, "history and tickets share customer messages"
    ids = [t["id"] for t in history + tickets]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert history[-1]["created_at"] < tickets[0]["created_at"]

    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "history.jsonl", history)
    write_jsonl(args.out / "tickets.jsonl", tickets)
    (args.out / "LICENSE-CDLA-Sharing-1.0.txt").write_bytes((args.data / LICENSE_REL).read_bytes())
    print(f"read {len(all_rows)} Bitext rows ({len(rows)} after removing near-duplicates)")
    print(f"wrote {len(history)} history tickets and {len(tickets)} replay tickets "
          f"({len(OWN_TICKETS)} hand-written) to {args.out}")


if __name__ == "__main__":
    main()
