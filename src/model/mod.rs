//! CNN models: a trainable ResNet family with torchvision parameter names.

pub mod cost;
pub mod init;
pub mod layers;
pub mod pool;
pub mod pretrained;
pub mod resnet;
