from digitbench.reports.format import contender_labels


def test_a_contender_is_named_by_its_tuner_only_where_its_model_has_several():
    pairs = [("logreg", "none"), ("lenet-relu", "optuna"), ("lenet-relu", "keras-tuner"),
             ("rbf-svm", "optuna")]
    assert contender_labels(pairs) == ["logreg", "lenet-relu (optuna)", "lenet-relu (keras-tuner)",
                                       "rbf-svm"]
    assert contender_labels(iter([])) == []
