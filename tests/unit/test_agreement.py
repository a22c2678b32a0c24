"""Where the models of a comparison agree (`imgclf.jobs.comparisons.agreement`)."""

from imgclf.jobs.comparisons import agreement


def test_agreement_names_the_common_first_class_only_when_all_agree() -> None:
    indices = {"cat": 281, "dog": 207, "fox": 277}

    def job(model: str, *labels: str) -> dict[str, object]:
        top5 = [{"label": label, "class_index": indices[label], "probability": 0.1} for label in labels]
        return {"model": model, "status": "succeeded", "result": {"top5": top5}}

    same = agreement([job("a", "cat", "dog"), job("b", "cat", "fox")])
    assert same["top1"] == "cat" and [entry["label"] for entry in same["classes"]] == ["cat"]
    split = agreement([job("a", "cat", "dog"), job("b", "dog", "cat"), {"model": "c", "status": "failed"}])
    assert split["top1"] is None and {entry["label"] for entry in split["classes"]} == {"cat", "dog"}
    assert agreement([job("a", "cat")])["top1"] is None  # one model agrees with nobody
