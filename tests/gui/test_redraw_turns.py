"""RedrawTurns: heavy redraws take turns, one per tick, none starved."""

from workshop_app.gui.redraw_turns import RedrawTurns


def test_one_redraw_a_tick_and_the_refused_view_goes_next():
    turns = RedrawTurns()
    plots, trace = object(), object()
    assert turns.claim(plots, 1)
    assert not turns.claim(trace, 1)
    # Tick 2 is kept for the trace: the plots, though they ask first, wait.
    assert not turns.claim(plots, 2)
    assert turns.claim(trace, 2)
    assert turns.claim(plots, 3)


def test_two_views_due_on_every_tick_alternate():
    turns = RedrawTurns()
    plots, trace = object(), object()
    drawn = {id(plots): 0, id(trace): 0}
    for tick in range(1, 101):
        for view in (plots, trace):  # always asked in this order
            if turns.claim(view, tick):
                drawn[id(view)] += 1
    assert drawn[id(plots)] == 50 and drawn[id(trace)] == 50


def test_a_kept_tick_its_view_does_not_ask_for_is_not_kept_longer():
    turns = RedrawTurns()
    plots, trace = object(), object()
    assert turns.claim(plots, 1) and not turns.claim(trace, 1)
    assert not turns.claim(plots, 2)  # kept for the trace, which was hidden meanwhile
    assert turns.claim(plots, 3)  # the plots' own keep: granted
    assert turns.claim(trace, 4)  # nothing is kept any more


def test_a_view_alone_redraws_whenever_it_asks():
    turns = RedrawTurns()
    plots = object()
    assert all(turns.claim(plots, tick) for tick in range(1, 20))
