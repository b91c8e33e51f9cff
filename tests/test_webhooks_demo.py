"""``hub demo``'s webhook section (a failed payment reaching HubSpot in seconds, measured),
its task counts that reconcile, and "why it moved" naming a lifted cap."""

from __future__ import annotations


def test_the_demo_times_a_failed_payment_reaching_the_crm_and_its_tasks_add_up(tmp_path):
    from hub.demo import run_demo

    result = run_demo(str(tmp_path / "demo.db"), companies=20, seed=5, weeks=1)
    hook = result.webhook
    assert hook is not None and hook["error"] is None, hook
    assert hook["score_before"] != hook["score_after"]
    assert hook["task"].startswith("Payment failed")
    seconds = max(hook["score_at"], hook["task_at"]) - hook["failed_at"]
    assert 0 < seconds < 20  # seconds, not the 30 minutes of the schedule
    assert hook["deliveries"] >= 1
    # Only Stripe was synced by the delivery, and not its every stream.
    assert hook["synced"] and all(s.startswith("stripe.") for s in hook["synced"])
    assert "stripe.subscriptions" not in hook["synced"]
    t = result.task_counts
    assert t["created"] == t["opened"] - t["merged"] - t["cancelled"] - t["held"]
    assert t["created"] == t["crm_created"]  # what the CRM received is what the hub says
    assert sum(t["by_playbook"].values()) == t["opened"]
    assert t["by_playbook"].get("payment_failed", 0) >= 1


def test_why_it_moved_names_a_lifted_cap():
    """The built-in model caps a score at 39 while an invoice is past due. Baseline: computed
    score 39 with measures billing 55, support 90 (weights as configured): their weighted
    mean is above 39, so the cap set the score. Now 82 without the cap: the cap's lift is
    named first. A baseline at 39 whose measures average 39 or less was not capped."""
    from hub.health.moves import _caps, _lifted

    caps = _caps(None)
    cap, weights, label = next(c for c in caps if c[0].max == 39)
    names = list(weights)[:2]
    capped = {"computed_score": 39, "measures": {names[0]: 55.0, names[1]: 90.0}}
    # weighted mean of 55 and 90 is between 55 and 90, whatever the weights: above 39.
    text = _lifted(capped, {"computed_score": 82}, caps)
    assert text == f"{label} cap lifted (invoice past due: was capped at 39)"
    uncapped = {"computed_score": 39, "measures": {names[0]: 39.0, names[1]: 39.0}}
    assert _lifted(uncapped, {"computed_score": 82}, caps) is None  # mean 39: no cap held
    assert _lifted(capped, {"computed_score": 30}, caps) is None  # the score fell: no lift
