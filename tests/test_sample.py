import optuna
import pytest

from space import Infeasible, count_params, family_min_params, sample
from space.sampling import USE_RANGE

optuna.logging.set_verbosity(optuna.logging.ERROR)


def draws(budget: int, n: int, seed: int = 0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        try:
            out.append(sample(trial, budget, 15))
        except Infeasible as e:
            out.append(e)
        study.tell(trial, 0.0)
    return out


@pytest.mark.parametrize("budget", [300, 1500, 8000, 20000])
def test_every_draw_is_within_budget(budget):
    results = draws(budget, 200, seed=budget)
    feasible = [d for d in results if not isinstance(d, Infeasible)]
    assert feasible, "no feasible draw at all"
    assert all(count_params(d.spec) <= budget for d in feasible)


def test_draws_use_most_of_the_budget():
    feasible = [d for d in draws(8000, 300) if not isinstance(d, Infeasible)]
    uses = sorted(count_params(d.spec) / 8000 for d in feasible)
    assert len(feasible) >= 0.85 * 300
    assert uses[len(uses) // 2] >= 0.7  # median
    assert uses[0] >= USE_RANGE[0] - 0.1


def test_spec_is_a_pure_function_of_the_params():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    t = study.ask()
    d = sample(t, 8000, 15)
    fixed = optuna.trial.FixedTrial(t.params)
    assert sample(fixed, 8000, 15).spec == d.spec


def test_tiny_budget_is_infeasible_not_over():
    results = draws(family_min_params(), 100)
    assert any(isinstance(r, Infeasible) for r in results)
    assert all(count_params(r.spec) <= family_min_params() for r in results if not isinstance(r, Infeasible))
