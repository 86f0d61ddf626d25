"""Train from Python under MPI, then use the model: every rank runs this script.

    mpiexec -n 5 .venv/bin/python docs/examples/train_from_python.py [OUT_DIR]

Rank 0 is the parameter server, ranks 1..4 the workers. mpigc.train takes the options of
``mpigc train`` by their Python names and returns the same result on every rank.
"""

import sys

import mpigc  # before MPI starts: mpigc.train sets MPICH's yield settings when oversubscribed

out = sys.argv[1] if len(sys.argv) > 1 else "runs/python-example"
result = mpigc.train(
    data="synthetic:n=20000,d=50,seed=1",   # or a file, or (X, y) arrays
    model="logistic", scheme="psgc", load=2, optimizer="lbfgs", tol=1e-8,
    fit_intercept=True, standardize=True, validation_fraction=0.2,
    stragglers="bimodal:p=0.25,slowdown=4", out=out, quiet=True)

model = result.model                     # a LinearModel: coef_, intercept_, predict, ...
held = result.summary["holdout"]         # metrics on the 20% of rows held out
if result.rank == 0:                     # rank 0 of comm (default: MPI.COMM_WORLD)
    print(f"{result.summary['evaluations']} evaluations, held-out accuracy "
          f"{held['accuracy']:.4f}, AUC {held['roc_auc']:.4f}; intercept "
          f"{model.intercept_:.4f}, {model.n_features_in_} coefficients; wrote {out}")
    again = mpigc.load_model(f"{out}/model.npz")   # the same model, from its file
    assert (again.coef_ == model.coef_).all() and again.intercept_ == model.intercept_
