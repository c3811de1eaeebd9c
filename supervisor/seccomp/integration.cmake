# Integration tests: static target programs driven by seccomp_driver.
