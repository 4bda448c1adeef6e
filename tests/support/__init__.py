"""Shared test code for Seam's tests and benchmarks: everything a test module or a bench module needs besides
its own tests lives here, so no test module imports another test module or `conftest.py`.

- `fakes/`: the loopback fake Slack, Zendesk and OpenAI servers (`FakeSlack`, `FakeZendesk`, `FakeOpenAI`);
- `constants`: the repository root and the fixed identities every test deployment shares (signing secrets,
  escalation channel, customer);
- `signing`: requests signed the way Slack and Zendesk sign them;
- `payloads`: Slack interaction payloads (button clicks, modal submissions);
- `knowledge`: a small knowledge folder of help articles;
- `server`: the real `python -m bot serve` in a subprocess, pointed at the fakes;
- `pipeline`: the pipeline built in-process against the fakes;
- `waiting`: polling until something asynchronous has happened;
- `posts`: what Seam posted to the fake Slack;
- `jsonl` and `cli`: contract JSONL files and `python -m bot …` run as a person would;
- `helpdesks`: one harness per helpdesk, driven by the helpdesk contract suite in `tests/contract/`.

Modules here import no pytest fixtures and define none; `tests/conftest.py` turns them into fixtures.
"""
