//! SageMaker.
