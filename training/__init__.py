"""SmearLab's training package: segmentation training, inference, active learning, smear
analysis, the job runner, and diagnosis support (criteria, classifier, forecast).

Never imports Streamlit; heavy modules (torch, smp) are imported by the submodules that need
them, so ``import training`` stays cheap. The CLI is ``python -m training``.
"""

__all__: list[str] = []
