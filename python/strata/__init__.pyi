"""Type stubs of the strata package (signatures for IDEs and type checkers)."""

from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

_Float = Union[np.float32, np.float64]
_Seed = Union[None, int, np.random.RandomState, np.random.Generator]

class ConvergenceWarning(UserWarning): ...

class NMF:
    n_components: Optional[int]
    init: Optional[Literal["random", "custom"]]
    solver: Literal["mu", "mm", "heuristic", "me"]
    beta_loss: Union[Literal["frobenius", "kullback-leibler", "itakura-saito"], float]
    tol: float
    max_iter: int
    random_state: _Seed
    alpha_W: float
    alpha_H: Union[float, Literal["same"]]
    l1_ratio: float
    components_: NDArray[_Float]
    n_components_: int
    n_iter_: int
    reconstruction_err_: float
    n_features_in_: int
    trace_: Dict[str, NDArray[np.float64]]
    status_: str
    def __init__(
        self,
        n_components: Optional[int] = None,
        *,
        init: Optional[Literal["random", "custom"]] = None,
        solver: Literal["mu", "mm", "heuristic", "me"] = "mu",
        beta_loss: Union[Literal["frobenius", "kullback-leibler", "itakura-saito"], float] = "frobenius",
        tol: float = 1e-4,
        max_iter: int = 200,
        random_state: _Seed = None,
        alpha_W: float = 0.0,
        alpha_H: Union[float, Literal["same"]] = "same",
        l1_ratio: float = 0.0,
    ) -> None: ...
    def fit(self, X: ArrayLike, y: Any = None, **params: Any) -> "NMF": ...
    def fit_transform(
        self, X: ArrayLike, y: Any = None, W: Optional[ArrayLike] = None, H: Optional[ArrayLike] = None
    ) -> NDArray[_Float]: ...
    def transform(self, X: ArrayLike) -> NDArray[_Float]: ...
    def inverse_transform(self, X: ArrayLike) -> NDArray[_Float]: ...
    def get_params(self, deep: bool = True) -> Dict[str, Any]: ...
    def set_params(self, **params: Any) -> "NMF": ...

class _BaseMLP:
    hidden_layer_sizes: Union[int, Sequence[int]]
    activation: Literal["relu", "tanh", "logistic", "identity"]
    solver: str
    alpha: float
    batch_size: Union[int, Literal["auto"]]
    max_iter: int
    random_state: _Seed
    solver_options: Dict[str, Any]
    coefs_: List[NDArray[_Float]]
    intercepts_: List[NDArray[_Float]]
    loss_curve_: List[float]
    loss_: float
    n_iter_: int
    n_features_in_: int
    n_layers_: int
    n_outputs_: int
    out_activation_: str
    trace_: Dict[str, NDArray[np.float64]]
    status_: str
    solver_name_: str
    hyperparameters_: Dict[str, Any]
    def __init__(
        self,
        hidden_layer_sizes: Union[int, Sequence[int]] = (100,),
        activation: Literal["relu", "tanh", "logistic", "identity"] = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: Union[int, Literal["auto"]] = "auto",
        max_iter: int = 200,
        random_state: _Seed = None,
        **solver_options: Any,
    ) -> None: ...
    def get_params(self, deep: bool = True) -> Dict[str, Any]: ...
    def set_params(self, **params: Any) -> "_BaseMLP": ...

class MLPClassifier(_BaseMLP):
    classes_: NDArray[Any]
    def fit(self, X: ArrayLike, y: ArrayLike) -> "MLPClassifier": ...
    def predict_proba(self, X: ArrayLike) -> NDArray[_Float]: ...
    def predict(self, X: ArrayLike) -> NDArray[Any]: ...
    def score(self, X: ArrayLike, y: ArrayLike) -> float: ...

class MLPRegressor(_BaseMLP):
    def fit(self, X: ArrayLike, y: ArrayLike) -> "MLPRegressor": ...
    def predict(self, X: ArrayLike) -> NDArray[_Float]: ...
    def score(self, X: ArrayLike, y: ArrayLike) -> float: ...

class CompareResults(Dict[str, Any]):
    dir: str

def compare(
    *,
    solvers: Union[str, Sequence[str], None] = ...,
    problems: Union[str, Sequence[str], None] = ...,
    seeds: Union[int, str, None] = ...,
    epochs: Optional[float] = ...,
    time_budget: Optional[float] = ...,
    threads: Optional[int] = ...,
    dtype: Optional[Literal["f32", "f64"]] = ...,
    out: Optional[str] = ...,
    eval_every: Optional[float] = ...,
    force_threads: bool = ...,
    full: bool = ...,
    tune: bool = ...,
    lr_grid: bool = ...,
    tune_points: Optional[int] = ...,
    mnist_dir: Optional[str] = ...,
    fashion_mnist_dir: Optional[str] = ...,
    suite: Optional[Literal["papers"]] = ...,
    memory_limit_gib: Optional[float] = ...,
    max_train: Optional[int] = ...,
    max_test: Optional[int] = ...,
    distributed: bool = ...,
    no_progress: bool = ...,
    **options: Any,
) -> CompareResults: ...
def solvers() -> List[Tuple[str, str]]: ...
