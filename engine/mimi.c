typedef int flm_placeholder_;
