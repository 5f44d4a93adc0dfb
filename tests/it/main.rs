mod cluster_boot;
mod cluster_build;
mod cluster_common;
mod cluster_render;
mod cluster_secrets;
mod kubeadm_types;
