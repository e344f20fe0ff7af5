"""OpenML suites as fixed lists written into regbench, so a matrix never changes when
OpenML edits a suite.

OpenML-CC18 (study 99, "OpenML Curated Classification benchmark", Bischl et al. 2019,
https://www.openml.org/s/99): its 72 task ids as the suite lists them (unchanged since its
release; written into regbench on CC18_TAKEN), each with its dataset id, name and shape
from OpenML's published qualities:
NumberOfInstances (rows), NumberOfFeatures (columns, the target included) and
NumberOfClasses. The ids and shapes were written from the published suite; they are not
checked against the server from the machine that wrote them: `regbench fetch` reads each
task from OpenML and stops on any disagreement in dataset id or kind.

`cc18-small` keeps the CC18 tasks whose rows x features is at most SMALL_MAX_CELLS (its
members are listed beside the rule, which a test checks): 56 tasks that a laptop runs in
about an hour on two cores by the estimate of tools/cc18_estimate.py (docs/measurements.md).
"""

from __future__ import annotations

from dataclasses import dataclass

CC18_SUITE_ID = 99
CC18_TAKEN = "2026-12-06"  # the date the list was written into regbench


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite: OpenML task and dataset ids, the dataset's name and shape."""

    task_id: int
    data_id: int
    name: str
    rows: int
    features: int  # columns, the target included (OpenML's NumberOfFeatures)
    classes: int

    @property
    def size(self) -> int:
        """rows x features: what cc18-small is chosen by."""
        return self.rows * self.features

    def entry(self) -> dict[str, object]:
        """The matrix entry: the task id (its dataset and target), and its kind, so that a
        matrix is built without reading any data."""
        return {"name": "openml", "task_id": self.task_id, "kind": "classification"}


#                 task    data  name                                     rows  feat cls
CC18 = tuple(SuiteTask(*row) for row in [
    (3, 3, "kr-vs-kp", 3196, 37, 2),
    (6, 6, "letter", 20000, 17, 26),
    (11, 11, "balance-scale", 625, 5, 3),
    (12, 12, "mfeat-factors", 2000, 217, 10),
    (14, 14, "mfeat-fourier", 2000, 77, 10),
    (15, 15, "breast-w", 699, 10, 2),
    (16, 16, "mfeat-karhunen", 2000, 65, 10),
    (18, 18, "mfeat-morphological", 2000, 7, 10),
    (22, 22, "mfeat-zernike", 2000, 48, 10),
    (23, 23, "cmc", 1473, 10, 3),
    (28, 28, "optdigits", 5620, 65, 10),
    (29, 29, "credit-approval", 690, 16, 2),
    (31, 31, "credit-g", 1000, 21, 2),
    (32, 32, "pendigits", 10992, 17, 10),
    (37, 37, "diabetes", 768, 9, 2),
    (43, 44, "spambase", 4601, 58, 2),
    (45, 46, "splice", 3190, 61, 3),
    (49, 50, "tic-tac-toe", 958, 10, 2),
    (53, 54, "vehicle", 846, 19, 4),
    (219, 151, "electricity", 45312, 9, 2),
    (2074, 182, "satimage", 6430, 37, 6),
    (2079, 188, "eucalyptus", 736, 20, 5),
    (3021, 38, "sick", 3772, 30, 2),
    (3022, 307, "vowel", 990, 13, 11),
    (3481, 300, "isolet", 7797, 618, 26),
    (3549, 458, "analcatdata_authorship", 841, 71, 4),
    (3560, 469, "analcatdata_dmft", 797, 5, 6),
    (3573, 554, "mnist_784", 70000, 785, 10),
    (3902, 1049, "pc4", 1458, 38, 2),
    (3903, 1050, "pc3", 1563, 38, 2),
    (3904, 1053, "jm1", 10885, 22, 2),
    (3913, 1063, "kc2", 522, 22, 2),
    (3917, 1067, "kc1", 2109, 22, 2),
    (3918, 1068, "pc1", 1109, 22, 2),
    (7592, 1590, "adult", 48842, 15, 2),
    (9910, 4134, "Bioresponse", 3751, 1777, 2),
    (9946, 1510, "wdbc", 569, 31, 2),
    (9952, 1489, "phoneme", 5404, 6, 2),
    (9957, 1494, "qsar-biodeg", 1055, 42, 2),
    (9960, 1497, "wall-robot-navigation", 5456, 25, 4),
    (9964, 1501, "semeion", 1593, 257, 10),
    (9971, 1480, "ilpd", 583, 11, 2),
    (9976, 1485, "madelon", 2600, 501, 2),
    (9977, 1486, "nomao", 34465, 119, 2),
    (9978, 1487, "ozone-level-8hr", 2534, 73, 2),
    (9981, 1468, "cnae-9", 1080, 857, 9),
    (9985, 1475, "first-order-theorem-proving", 6118, 52, 6),
    (10093, 1462, "banknote-authentication", 1372, 5, 2),
    (10101, 1464, "blood-transfusion-service-center", 748, 5, 2),
    (14952, 4534, "PhishingWebsites", 11055, 31, 2),
    (14954, 6332, "cylinder-bands", 540, 40, 2),
    (14965, 1461, "bank-marketing", 45211, 17, 2),
    (14969, 4538, "GesturePhaseSegmentationProcessed", 9873, 33, 5),
    (14970, 1478, "har", 10299, 562, 6),
    (125920, 23381, "dresses-sales", 500, 13, 2),
    (125922, 40499, "texture", 5500, 41, 11),
    (146195, 40668, "connect-4", 67557, 43, 3),
    (146800, 40966, "MiceProtein", 1080, 82, 8),
    (146817, 40982, "steel-plates-fault", 1941, 28, 7),
    (146819, 40983, "wilt", 4839, 6, 2),
    (146820, 40984, "segment", 2310, 20, 7),
    (146821, 40975, "car", 1728, 7, 4),
    (146822, 40979, "mfeat-pixel", 2000, 241, 10),
    (146824, 40994, "climate-model-simulation-crashes", 540, 21, 2),
    (146825, 40996, "Fashion-MNIST", 70000, 785, 10),
    (167119, 41027, "jungle_chess_2pcs_raw_endgame_complete", 44819, 7, 3),
    (167120, 23517, "numerai28.6", 96320, 22, 2),
    (167121, 40923, "Devnagari-Script", 92000, 1025, 46),
    (167124, 40927, "CIFAR_10", 60000, 3073, 10),
    (167125, 40978, "Internet-Advertisements", 3279, 1559, 2),
    (167140, 40670, "dna", 3186, 181, 3),
    (167141, 40701, "churn", 5000, 21, 2),
])

SMALL_MAX_CELLS = 500_000  # rows x features of the largest task in cc18-small
# cc18-small, written out: the rule above applied to CC18's shapes; it leaves out the 16
# largest (image sets, adult, bank-marketing, connect-4, numerai28.6, nomao, ...)
CC18_SMALL = (
    3, 6, 11, 12, 14, 15, 16, 18, 22, 23, 28, 29, 31, 32, 37, 43, 45, 49, 53, 219, 2074, 2079,
    3021, 3022, 3549, 3560, 3902, 3903, 3904, 3913, 3917, 3918, 9946, 9952, 9957, 9960, 9964,
    9971, 9978, 9985, 10093, 10101, 14952, 14954, 14969, 125920, 125922, 146800, 146817,
    146819, 146820, 146821, 146822, 146824, 167119, 167141,
)


def by_id() -> dict[int, SuiteTask]:
    """CC18's tasks by task id."""
    return {t.task_id: t for t in CC18}


def small() -> list[SuiteTask]:
    """cc18-small's tasks, in CC18's order."""
    members = set(CC18_SMALL)
    return [t for t in CC18 if t.task_id in members]
