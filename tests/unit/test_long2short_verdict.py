"""long2short's verdict (Kimi k1.5 §2.4): a method counts when it is more token-efficient because it is shorter."""
from r1model.train.chains import L2S_METHODS, long2short_verdict


def test_verdict_wants_shorter_answers_not_an_efficiency_raised_by_accuracy_alone():
    def metrics(**methods):
        return {f"{m}.{k}": v for m, (acc, length) in methods.items()
                for k, v in (("accuracy", acc), ("mean_length", length), ("token_efficiency", acc / length))}
    same_length = metrics(long=(0.99, 22.6), **{m: (1.0, 22.6) for m in L2S_METHODS if m != "long"})
    verdict = long2short_verdict(same_length)
    assert verdict["outcome"] == "not reproduced"
    assert all("not 5% below the long model's 22.6" in reason for reason in verdict["reasons"])
    shorter = metrics(long=(0.99, 22.6), **{"length-penalty": (0.97, 12.0), "shortest-rejection": (1.0, 22.6),
                                              "merge": (1.0, 22.6)})
    verdict = long2short_verdict(shorter)
    assert verdict["outcome"] == "reproduced" and [r.split(":")[0] for r in verdict["reasons"]] == ["length-penalty"]
