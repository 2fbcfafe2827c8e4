//! Seeded training of classifiers.
