
mod lab;
