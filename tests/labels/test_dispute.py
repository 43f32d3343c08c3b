import numpy as np

from explorer.labels.dispute import second_opinion
from explorer.labels.propagate import Propagation
from explorer.labels.suggest import DISPUTED, suggest_why


def _graph_mistakes(make_clusters, wrong: int = 6):
    """Three clusters; pseudo-labels right but for ``wrong`` rows of cluster 0 called class 1, as a
    graph does when the encoder put a few items beside another class's items."""
    x, y = make_clusters(80, 3, seed=2)
    labelled = np.zeros(len(y), bool)
    for c in range(3):
        labelled[np.flatnonzero(y == c)[:5]] = True
    predicted = y.copy()
    mistaken = np.flatnonzero(y == 0)[-wrong:]
    predicted[mistaken] = 1
    return x, y, labelled, predicted, mistaken


def test_dispute_marks_the_rows_the_graph_got_wrong_and_no_others(make_clusters):
    x, y, labelled, predicted, mistaken = _graph_mistakes(make_clusters)
    doubt = second_opinion(x, predicted, labelled)[0]
    assert doubt.shape == (len(y),) and (doubt >= 0).all()
    assert (doubt[mistaken] > 0.5).all()
    others = np.setdiff1d(np.arange(len(y)), mistaken)
    assert (doubt[others] == 0).all()
    # asked for some rows only: the same values; and the class it gives them is their true one
    np.testing.assert_allclose(second_opinion(x, predicted, labelled, rows=mistaken[:3])[0], doubt[mistaken[:3]])
    assert (second_opinion(x, predicted, labelled, rows=mistaken)[1] == 0).all()


def test_dispute_is_silent_with_one_class_and_on_unreached_rows(make_clusters):
    x, y, labelled, predicted, mistaken = _graph_mistakes(make_clusters)
    one = labelled & (y == 0)
    assert (second_opinion(x, predicted, one)[0] == 0).all()
    unreached = predicted.copy()
    unreached[mistaken] = -1
    assert (second_opinion(x, unreached, labelled)[0][mistaken] == 0).all()


def test_suggest_asks_about_disputed_pseudo_labels_first(make_clusters):
    from explorer.neighbours.knn import knn_graph

    x, y, labelled, predicted, mistaken = _graph_mistakes(make_clusters)
    n_classes = 3
    scores = np.zeros((len(y), n_classes), np.float32)
    scores[np.arange(len(y)), predicted] = 1.0  # the graph is sure everywhere: margins see nothing
    result = Propagation(predicted, np.ones(len(y), np.float32), scores, np.ones(len(y), np.float32))
    picks, why = suggest_why(knn_graph(x, k=10), x, result, labelled, 10)
    disputed = picks[np.array(why) == DISPUTED]
    assert len(disputed) >= 2 and np.isin(disputed, mistaken).all()
    assert why[: len(disputed)] == [DISPUTED] * len(disputed)


def test_disputed_by_is_where_the_strength_is_above_zero(make_clusters):
    from explorer.labels.dispute import disputed_by

    x, y, labelled, predicted, mistaken = _graph_mistakes(make_clusters)
    strength, opinion = second_opinion(x, predicted, labelled)
    np.testing.assert_array_equal(disputed_by(opinion, predicted), strength > 0)
    unreached = predicted.copy()
    unreached[mistaken] = -1
    assert not disputed_by(opinion, unreached)[mistaken].any()


def test_the_classifier_is_fitted_again_only_when_the_labels_changed_enough(make_clusters, monkeypatch):
    """Each click propagates again; the classifier's choices are kept until the labels change as
    much as a calibration waits for, and then follow the new labels."""
    from types import SimpleNamespace

    from explorer.labels import calibrate, dispute
    from explorer.workflow import labelling

    x, y, labelled, predicted, mistaken = _graph_mistakes(make_clusters)
    monkeypatch.setattr(labelling, "map_embeddings", lambda *args, **kwargs: x)
    fits = []
    real = dispute.second_opinion
    monkeypatch.setattr(dispute, "second_opinion", lambda *a, **k: fits.append(1) or real(*a, **k))
    solver = SimpleNamespace(opinion_memo=None)
    seeds = np.where(labelled, y, -1)
    first = labelling._disputed(None, 0, solver, seeds, predicted, 3, None)
    np.testing.assert_array_equal(first, real(x, predicted, labelled)[0] > 0)
    seeds[np.flatnonzero(~labelled)[0]] = y[np.flatnonzero(~labelled)[0]]  # one more label: kept
    assert labelling._disputed(None, 0, solver, seeds, predicted, 3, None) is not None and len(fits) == 1
    more = np.flatnonzero(seeds < 0)[: calibrate.REFIT_MIN + 5]
    seeds[more] = y[more]
    labelling._disputed(None, 0, solver, seeds, predicted, 3, None)
    assert len(fits) == 2 and solver.opinion_memo[0] == int((seeds >= 0).sum())
