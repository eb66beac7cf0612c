"""Emotion models: the clip LSTM (audio → arousal/valence per 0.5 s) and the next-value forecaster."""
