mod cluster_boot;
mod cluster_build;
mod cluster_common;
mod cluster_render;
mod cluster_secrets;
mod harness;
mod kubeadm_types;
mod site;
