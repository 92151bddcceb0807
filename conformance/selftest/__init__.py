"""A deliberately broken runtime, used to prove the suite notices broken behaviour."""
