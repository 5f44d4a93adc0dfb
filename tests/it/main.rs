mod day2;
mod fetch;
mod harness;
mod lab;
mod serve_http;
mod serve_support;
mod serve_tftp;
mod site;
