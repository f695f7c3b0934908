"""The drift stage: `measure` runs Evidently on a night's sample against the champion's reference."""
