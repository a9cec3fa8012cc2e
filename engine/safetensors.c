typedef int flm_placeholder2_;
